// One itsuka node as a pure state machine: NodeCore (replication, core/node_core.h),
// Gossiper (membership, core/gossip.h) and RepairDriver (anti-entropy, core/repair.h),
// and the glue that joins them. The daemon (server/node.cc) and the simulator drive
// exactly this object, so the production wiring is what the simulator tests.
//
// API summary.
//   Inputs (each takes the time it happens at; `now_ms` is monotonic, `wall_ms` the
//   wall clock hints and repair jobs are stamped with):
//     StartGet / StartPut / StartConsistent  client requests (ids chosen by the shell)
//     OnPeerMessage                          an authenticated peer's decoded message
//     OnPeerRefused                          a message whose values the decoder refused
//     SetReachable                           the transport's view of a peer
//     Tick                                   time; runs the sub-timers that are due
//     CommitFailed                           the commit of the last TakeOutbox failed
//     Leave, StartRepair, StopRepair, ResumeRepair   operator actions
//     Start (once: the initial view), BeginShutdown
//   Effects come out in a NodeOutbox, in two parts:
//     gated   (sends, results, writes): taken by TakeOutbox, once per commit round.
//             ORDERING RULE: the shell commits everything its store has staged BEFORE
//             it sends any of `sends` or answers any of `results`; if the commit fails
//             it sends nothing of them, calls CommitFailed, and answers each result as
//             its ClientResult::on_commit_failure says.
//     at once (direct, connect, view_changed, repair_progress, logs): depend on
//             nothing staged; TakeEffects returns only these (TakeOutbox returns them
//             too). The shell handles them right after the call that produced them:
//               logs            print each line at its level, in order
//               connect         open a connection to each member (no-op if open); a
//                               member the transport has never had up is marked
//                               unreachable (SetReachable(id, false))
//               view_changed    persist view() if it differs from what is stored
//               repair_progress write it (EncodeRepairProgress) as the saved progress
//               direct          send (gossip, refusal answers); flush if flush_direct
//               keyspace        hand to the keyspace coordinator (SCAN, DBSIZE)
//   A simulator may simply call TakeOutbox after every input, commit its store, then
//   deliver everything; the daemon handles TakeEffects after each event and
//   TakeOutbox once per loop round (server::Node::CommitAndRelease).
//   Ticks: Tick(now, wall) may be called at any time; it runs each sub-timer whose
//   time has come, in this order: housekeeping (repair schedule and the repair of
//   partitions not authoritative here, every housekeeping_ms), the core (NodeCore
//   timeouts, hint replay, repair driver timeouts, every core_tick_ms) and gossip (a
//   round, every gossip_interval_ms). A sub-timer that ran is due again `interval`
//   after the time it ran (as a repeating libuv timer). NextWakeup() is when the next
//   one is due: the shell calls Tick then (or earlier; nothing runs before its time).
//
// The ring fence (core/peer_checks.h): every fenced message leaves stamped with the
// ownership version of the ring it was planned on (NodeCore stamps its sends; the
// answers made here carry the current one). Admission refuses a fenced request from a
// sender known as left or stamped below this node's version (counted:
// peer_left_sender_refused, peer_stale_ring_refused; answered at once, so the sender's
// operation fails now instead of at its timeout). Catch-up: whenever a peer's fenced
// message (request or reply) shows a version other than this node's, or its sender was
// refused as left or stale, this node starts a gossip exchange with that peer at once
// (a GossipSyn; its GossipAck completes it) -- at most one per peer per
// kCatchUpIntervalMs -- so whichever side is behind learns the newer view in one round
// trip, and a refused client operation's retry goes out on the current ring.
//
// Glue owned here: applying a member view (both rings, repair's ring and its moving
// set, AllowTransfers once the move is visible, connections to learned members);
// publishing a finished transfer (SetSynced) only once nothing staged is left, so
// every object it merged is durable before anyone counts on it; gossip receive through
// FilterGossip and the GossipAck; admission of peer messages (core/peer_checks.h) with
// its refusal answers; routing of messages to the core, repair or gossip; answering
// repair requests (including the driver's own, locally) and keeping the runs' books;
// the clock-offset check.
//
// The membership gate (docs/DESIGN.md 4.3.1 "A restarted node earns its place"). A node
// the shell started from a saved view (NodeConfig::from_saved_view: a restart with a
// data directory) does not know whether it was decommissioned or the rings moved while
// it was down. Until it has exchanged gossip both ways with a majority of the active
// (not left) members of its view, counting itself -- a gossip message from a peer whose
// view already holds this node's new incarnation, so the peer heard this node since the
// restart and this node hears the peer now -- it is *gated*: client requests fail with
// kTryAgain, and every peer request that would make it vote or coordinate (replica
// writes and reads, forwarded writes and CONSISTENT operations, Paxos, transfers,
// repair requests) is refused with a reply saying so; gossip, hellos, heartbeats,
// clock probes and the replies to its own requests (hint replay) pass, and it starts
// no transfer and no repair. Peers that are gated themselves (GossipAck::sender_gated)
// count toward the majority, but a majority of gated peers alone opens the gate only
// once every active member was heard: otherwise at least one heard peer must serve (a
// whole cluster restarted at once gets out once all its members are back; stale nodes
// restarted together do not open each other's gate). OpenGate is the operator's
// override. A node whose own state is left (learned by gossip or
// saved) stops serving for good: clients get kUnavailable saying it was
// decommissioned, peer requests are refused as above, one warning is logged. A fresh
// node (no saved view) is not gated.
//
// No clocks, no I/O, no globals: randomness (the gossip peer) comes from a generator
// seeded by NodeConfig::seed. Deterministic given its inputs. Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/clock_offset.h"
#include "core/gossip.h"
#include "core/messages.h"
#include "core/node_core.h"
#include "core/repair.h"
#include "core/ring.h"

namespace itsuka::core {

// What a node stores through: objects (LocalStore), the anti-entropy trees
// (MerkleSource), and the facts the glue needs.
class NodeStore : public LocalStore, public MerkleSource {
 public:
  // Whether anything is staged and not yet committed.
  virtual bool HasStaged() const = 0;
  // Partitions not authoritative here (lost data) until a repair covers them.
  virtual const std::set<uint32_t>& suspect() const = 0;
  // A repair covered these partitions: stage clearing their mark (committed with the
  // round's other staged writes, after the merges).
  virtual void ClearSuspect(const std::set<uint32_t>& partitions) = 0;
};

struct NodeConfig {
  NodeOptions core;             // NodeCore's (n, timeouts, limits, actor, ...)
  RepairOptions repair;         // the driver's
  RepairLimits repair_limits;   // the replica side's reply bounds
  uint32_t partitions = 64;
  // How keys map to partitions (the data format's placement, core/ring.h).
  Placement placement = Placement::kSlots;
  int64_t core_tick_ms = 20;
  int64_t gossip_interval_ms = 1000;
  int64_t housekeeping_ms = 1000;
  // Background repair of the partitions this node owns every so often (0: never);
  // the first one no earlier than this long after start_ms.
  int64_t repair_interval_ms = 0;
  int64_t start_ms = 0;
  // This node's own tombstone grace, enforced on the repair requests it answers.
  int64_t repair_min_grace_ms = 86400000;
  // A repair of the partitions not authoritative here is retried this often while it
  // cannot start.
  int64_t suspect_retry_ms = 5000;
  int64_t max_clock_offset_ms = 0;  // 0: no check
  uint64_t seed = 1;                // gossip peer choice
  // The shell restored this node's view from its data directory: the node is gated
  // until it has heard from a majority of its view's active members (see above).
  bool from_saved_view = false;
  // TEST ONLY, deliberately broken glue for the simulator's self-test (like
  // NodeOptions::unsafe_ack_before_quorum): publish `synced` for a new ring before the
  // transfers it needs have finished.
  bool unsafe_synced_before_transfer = false;
};

struct LogLine {
  enum class Level { kInfo, kWarn, kError };
  Level level = Level::kInfo;
  std::string text;
};

struct PeerAddress {
  std::string id;
  std::string host;
  int port = 0;
};

struct NodeOutbox {
  // Gated by the commit (ORDERING RULE above).
  std::vector<std::pair<std::string, PeerMessage>> sends;
  std::vector<ClientResult> results;
  std::vector<WriteRecord> writes;
  // At once.
  std::vector<std::pair<std::string, PeerMessage>> direct;
  bool flush_direct = false;
  std::vector<PeerAddress> connect;
  bool view_changed = false;
  std::optional<std::string> repair_progress;
  std::vector<LogLine> logs;
  // Admitted keyspace messages (ScanRequest/Reply, KeyCountRequest/Reply): the shell's
  // keyspace coordinator (server/keyspace.h) answers and collects them; at once.
  std::vector<std::pair<std::string, PeerMessage>> keyspace;
};

// Counters for INFO cluster.
struct NodeStats {
  uint64_t peer_messages_refused = 0;   // values the decoder or the limits refused
  uint64_t peer_senders_refused = 0;    // from a sender that may not send them (all rules)
  uint64_t peer_stale_ring_refused = 0;   // of those: planned on an older ring (ring fence)
  uint64_t peer_left_sender_refused = 0;  // of those: from a member known as left
  uint64_t ring_catchups = 0;           // gossip exchanges started by a ring mismatch
  uint64_t gossip_entries_refused = 0;  // member states no flow could have produced
  uint64_t gate_refused = 0;            // client + peer requests refused by the gate or left
};

// Where this node stands with the membership gate (INFO membership_gate).
struct MembershipGate {
  enum class State { kOpen, kWaiting, kLeft };
  State state = State::kOpen;
  size_t heard = 0;    // active members heard from since the restart, itself included
  size_t serving = 0;  // of those, peers whose GossipAck said they serve (not gated)
  size_t need = 0;     // a majority of the view's active members
  size_t members = 0;  // the view's active members
};

// The books of the repair runs this node coordinates (ITSUKA.REPAIR STATUS, INFO).
struct RepairRuns {
  std::string state = "idle";  // idle | running | done | stopped
  bool resumed = false;        // the current job was resumed after a restart
  uint64_t completed = 0;
  int64_t last_end_ms = 0;
  RepairTotals cumulative;
};

// "host:port" -> (host, port); false if malformed.
bool SplitHostPort(const std::string& text, std::string* host, int* port);

class Node {
 public:
  static constexpr int64_t kCatchUpIntervalMs = 100;
  // `gossiper` holds this node's restored view; `store` must outlive the node.
  Node(Gossiper gossiper, NodeStore& store, NodeConfig config);
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& self() const { return core_.self(); }
  const NodeConfig& config() const { return config_; }
  NodeCore& core() { return core_; }
  const NodeCore& core() const { return core_; }
  const RepairDriver& repair() const { return repair_; }
  const View& view() const { return gossiper_.view(); }
  const MemberState& self_state() const { return gossiper_.self(); }
  const NodeStats& stats() const { return stats_; }
  const RepairRuns& repair_runs() const { return runs_; }
  // The membership gate (see above); Serving() is Ok when the node serves, else the
  // status client requests get (kTryAgain while gated, kUnavailable once left).
  MembershipGate gate() const;
  Status Serving() const;
  // "open", "waiting heard=1 need=3 members=4", "waiting heard=3 need=3 members=4
  // serving=0" (a majority heard, all of it gated), "left": INFO's membership_gate.
  std::string GateSummary() const;
  // The operator's override (ITSUKA.GATE OPEN): opens the gate now, logged, for a
  // cluster restarted whole with members that will never return, where the gated
  // survivors cannot tell that from being stale (docs/DESIGN.md 4.3.1). False (and
  // nothing changes) unless the node is gated.
  bool OpenGate();

  // Applies the initial view (rings, connections). Call once, after the reachability
  // of the seeds was set (unreachable until the transport connects them).
  void Start();
  // Starts the sub-timers at `now_ms` (Tick does so itself if they are not started).
  void StartTicks(int64_t now_ms);
  void Tick(int64_t now_ms, int64_t wall_ms);
  int64_t NextWakeup() const;
  // Shutting down: no more gossip rounds and no more repairs started by the schedule.
  void BeginShutdown() { shutting_down_ = true; }

  void StartGet(uint64_t client_req, const std::string& key, int r, int pr, int64_t now_ms);
  void StartPut(uint64_t client_req, const std::string& key, WriteSpec spec, int w, int pw,
                int64_t now_ms);
  void StartConsistent(uint64_t client_req, const std::string& key, bool read, WriteSpec spec,
                       int64_t now_ms);
  void OnPeerMessage(const std::string& from, const PeerMessage& msg, int64_t now_ms,
                     int64_t wall_ms);
  // `decoded`: the message as far as it decoded (null if not at all).
  void OnPeerRefused(const std::string& from, const PeerMessage* decoded, const std::string& why,
                     int64_t now_ms);
  void SetReachable(const std::string& node, bool up);

  // Operator: starts member `id`'s leave (decommission). False if unknown or gone, or if
  // this node does not serve (gated after a restart, or left): its view may be stale,
  // and a leave made on a stale view can remove a member that holds data elsewhere.
  bool Leave(const std::string& id);
  // Operator: starts a repair job now (fails if one runs or it names no partition, and
  // with Serving()'s status while gated or left: its ring may be stale).
  Status StartRepair(RepairProgress progress, int64_t now_ms);
  // Operator: stops the running job; the shell deletes the saved progress.
  void StopRepair();
  // After a restart: resumes the saved job (or, if it had finished, shows its result).
  // While gated the job waits, and is resumed at the first housekeeping tick after the
  // gate opened (dropped if the node learns it is left).
  void ResumeRepair(RepairProgress progress, int64_t now_ms);

  // Ok unless this node's clock is off by more than max_clock_offset_ms from a
  // majority of its reachable peers (then a -CLOCKSKEW error). `offset_of(id, &s)`
  // gives the transport's estimate for a peer (false if none). *typical_ms: median.
  Status ClockCheck(const std::function<bool(const std::string&, OffsetSample*)>& offset_of,
                    int64_t* typical_ms = nullptr) const;

  // Whether a TakeOutbox would have gated work (sends, results, repair requests).
  bool HasOutput() const;
  // The effects to handle at once (the gated part stays for TakeOutbox).
  NodeOutbox TakeEffects();
  // Once per commit round, before the commit: answers the repair driver's requests to
  // this node (staging what they merge), then returns every effect. A request to this
  // node made while something is staged (its own push, say) is answered in the next
  // round instead, once that is committed: HasOutput stays true for it.
  NodeOutbox TakeOutbox(int64_t now_ms, int64_t wall_ms);
  // The commit of what was staged before the last TakeOutbox failed (see NodeCore).
  void CommitFailed(const Status& why) { core_.CommitFailed(why); }
  // With nothing else to do: emits the repair progress if it changed since last saved.
  void SaveRepairProgressIfChanged();

 private:
  struct SubTimer {
    int64_t interval_ms = 0;
    int64_t due_ms = 0;
  };
  void ApplyView();
  void OnGossipRound();
  void OnGossip(const std::string& from, const PeerMessage& msg, int64_t now_ms);
  bool AdmitPeerMessage(const std::string& from, const PeerMessage& msg, int64_t now_ms);
  // The catch-up rule (above): a GossipSyn to `from` unless one went less than
  // kCatchUpIntervalMs ago.
  void CatchUp(const std::string& from, int64_t now_ms);
  void Refuse(const std::string& from, const PeerMessage& msg, const std::string& why,
              int64_t now_ms);
  void LogRefusal(const std::string& text, int64_t now_ms);
  PeerMessage AnswerRepair(const PeerMessage& msg, int64_t wall_ms);
  void PumpRepair(int64_t now_ms, int64_t wall_ms);
  void NoteRepairFinished(int64_t now_ms);
  void SaveRepairProgress();
  void ScheduleRepair(int64_t now_ms, int64_t wall_ms);
  void RepairSuspect(int64_t now_ms, int64_t wall_ms);
  void NoteRepairStarted();
  void ClearRepairedSuspects();
  void Log(LogLine::Level level, std::string text);
  bool RefuseClient(uint64_t client_req);
  bool RefusePeerRequest(const std::string& from, const PeerMessage& msg, int64_t now_ms);
  void NoteGossipFrom(const std::string& from, const PeerMessage& msg, const View& gossip);
  void UpdateGate();

  NodeConfig config_;
  NodeStore& store_;
  NodeCore core_;
  Gossiper gossiper_;
  RepairDriver repair_;
  std::mt19937_64 rng_;
  NodeOutbox out_;  // the at-once part
  std::vector<std::pair<std::string, PeerMessage>> repair_out_;  // gated repair messages
  // The driver's requests to this node that came while the store had staged writes:
  // answered at the next TakeOutbox, after the commit between (the store's Merkle trees
  // and digest lists only show committed data).
  std::vector<PeerMessage> repair_local_;
  bool ticks_started_ = false;
  SubTimer housekeeping_, core_tick_, gossip_tick_;
  bool shutting_down_ = false;
  NodeStats stats_;
  int64_t last_refusal_log_ms_ = -1000000;
  std::map<std::string, int64_t> last_catch_up_ms_;  // peer -> its last catch-up Syn
  uint64_t refusals_unlogged_ = 0;
  RepairRuns runs_;
  uint64_t repair_saved_ = 0;  // progress_version last emitted
  bool repair_was_running_ = false;
  // "; skipped ...: node in N partition(s), ..." for the finish line, or "".
  std::string SkippedText() const;
  std::set<uint32_t> repair_covers_suspect_;  // suspect partitions the running job may clear
  int64_t suspect_repair_next_ms_ = 0;
  // The membership gate.
  bool gated_ = false;
  bool left_ = false;
  uint64_t gate_incarnation_ = 0;       // this node's incarnation when it was gated
  // Peers heard from both ways since then -> whether a GossipAck of theirs said they serve.
  std::map<std::string, bool> gate_heard_;
  std::vector<ClientResult> refused_;   // client requests refused by the gate or left
  std::optional<RepairProgress> resume_after_gate_;  // a saved repair job waiting for the gate
};

}  // namespace itsuka::core
