// The replication logic of one node, as a pure state machine.
//
// Design note (Dynamo §4.5-4.6; Riak's put/get FSMs; the etcd-raft "Ready" pattern): the
// shell feeds NodeCore client requests, peer messages and the time, and collects an
// Outbox of effects: messages to send and client results. NodeCore reads and stages
// objects through a LocalStore; the shell commits what was staged *before* it sends
// anything from the Outbox, so every ack and every reply leaves only after the write
// it confirms is durable.
//
//  - Reads: any node coordinates. It asks the key's reachable primaries, replies once R
//    (PR of them primaries) answered with the merge of their objects, and after all
//    answered (or the deadline) writes the merge back to replicas it supersedes.
//  - Writes: only a primary replica of the key coordinates, because the new version's
//    dot must come from a node whose stored object holds every dot it issued for that
//    key (the dotted-version-vector invariant). Another node forwards the write to the
//    first reachable primary. The coordinator applies the write locally, sends the
//    resulting object to the other reachable primaries, which merge it, and replies once
//    W acks (PW from primaries) arrived. A conditional write (NX, XX, DEL) first reads
//    the key from W replicas and merges what they hold, so that, say, a DEL through a
//    replica that missed the value still deletes it.
//  - Sloppy quorum and hinted handoff (core/hints.h; on when a HintStore is set and
//    HandoffOptions::sloppy_quorum): a write's unreachable primaries are replaced by the
//    first reachable nodes after the preference list, which store the object as a hint
//    for the primary they stand in for; W counts their acks, PW does not. A primary
//    left without a substitute (small clusters, where every node is a primary) gets a
//    hint stored by the coordinator beside its own copy; it counts once toward W.
//    The coordinator is still always a primary: a substitute holds the key only as a
//    hint, and hints are deleted after handoff, so a substitute could not read back the
//    dots it issued and would reissue them (a later write dropped as "already seen").
//    So with no primary reachable a write is refused with -UNAVAILABLE (Dynamo §4.5
//    likewise hands writes to one of the top N). The read before a conditional write
//    goes to the same targets; replicas answer reads with their copy merged with the
//    hints they keep for the key, so a substitute shows what it holds for a primary.
//    ReplayHints sends stored hints to targets that are reachable again, rate-limited,
//    and deletes each only after the target's durable ack.
//  - CONSISTENT operations: per-key Paxos over the primaries; see core/paxos.h and
//    node_core_consistent.cc.
//  - Moves (core/gossip.h): while the read ring (owners now) and the write ring (owners
//    to be) differ, reads use the read ring; writes are coordinated by a read-ring
//    replica and need W acks from each ring's preference list (joint quorums), and a
//    node copies the partitions it gains from their read-ring replicas (PullRequest /
//    PullBatch) before it reports itself synced.
//    A copy carries each key's Paxos acceptor state as well as its data object, and the
//    receiver folds it into its own (AcceptorMerge: the higher promise, and the (accepted
//    ballot, value) pair with the higher ballot, never one's ballot with another's value),
//    staged with the objects. This is what keeps CONSISTENT reads linearizable across a
//    move: a chosen value is certain to be only in the acceptor state of a majority of the
//    old primaries; in data it may be only at the proposer (commits are best effort), and
//    an acceptor that never got the commit may hold no data object for the key at all, so
//    the state scan covers keys without one. Why it suffices (Lamport, "Paxos Made Simple",
//    invariant P2c; Cassandra 4.1 meets the same need differently, by a Paxos repair over a
//    quorum of the old replicas before a range moves): a copy counts as complete once every
//    old primary but at most one unreachable one was copied, and of N >= 2 primaries such a
//    set of N-1 meets every majority (N/2+1), so it contains an acceptor of every chosen
//    (b, v); the receiver then holds an accepted ballot >= b, and its pair is one some
//    acceptor really accepted, so by P2c its value is v or derived from v (CASPaxos chains
//    each chosen value on the last). After the move a majority of the new primaries either
//    includes a receiver (which knows >= b) or consists of old primaries only, and then it
//    is a majority of the old set too (the new set is never smaller than the old one unless
//    it is a subset of it, with no receiver) and meets the acceptors of b. Either way the
//    next prepare sees v. This relies on no round running on the key during the copy
//    (CONSISTENT operations are refused while its partition is moving), so no acceptance
//    lands behind the copy's cursor.
//
// No clocks, no I/O, no globals; deterministic given its inputs. Thread-compatible.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/hints.h"
#include "core/messages.h"
#include "core/object.h"
#include "core/paxos.h"
#include "core/quorum.h"
#include "core/ring.h"

namespace itsuka::core {

// Where a node keeps its objects. Staged objects are read back by Read and become
// durable when the shell commits them (before the Outbox is sent).
class LocalStore {
 public:
  virtual ~LocalStore() = default;
  // The key's object (empty if absent), or an error.
  virtual Result<Object> Read(std::string_view key) = 0;
  virtual void Stage(std::string_view key, Object obj) = 0;
  // The key's Paxos acceptor state (core/paxos.h); staged state is read back and
  // becomes durable with the same commit as staged objects. A store that keeps none
  // makes CONSISTENT operations fail with its error.
  virtual Result<AcceptorState> ReadPaxos(std::string_view /*key*/) {
    return Status::IOError("this store keeps no Paxos state");
  }
  virtual void StagePaxos(std::string_view /*key*/, AcceptorState /*state*/) {}
  // Whether this node can vouch for its copy of the key's partition. False once the
  // store lost data of it (a checksum failed, a write-ahead log was recovered with
  // loss) until a repair covered it. A copy that is not authoritative gives no votes:
  // its read replies are merged but count toward neither R nor PR (here or at a remote
  // coordinator), it is no Paxos acceptor, and a write it would coordinate first
  // reads the key from the other replicas (or is forwarded to an authoritative
  // primary), so that its new dot does not repeat one it issued before the loss.
  // Writes merged into it are still acknowledged: the ack says truly that this
  // version is durable here. Asked after each read, since a read may discover
  // corruption.
  virtual bool Authoritative(std::string_view /*key*/) const { return true; }

  // Partition transfer: up to max_keys objects with keys >= start that `want`, in key
  // order, including staged ones, examining at most max_examined keys (so one call never
  // walks a whole large store). `next` is where to continue; done when nothing is left.
  struct ScanBatch {
    std::vector<std::pair<std::string, Object>> objects;
    std::string next;
    bool done = false;
  };
  virtual Result<ScanBatch> Scan(std::string_view start, size_t max_keys, size_t max_examined,
                                 const std::function<bool(std::string_view)>& want) {
    (void)start, (void)max_keys, (void)max_examined, (void)want;
    return Status::InvalidArgument("this store cannot scan");
  }
  // Likewise for Paxos acceptor states, of keys in [start, end) (end empty: no bound),
  // staged ones included. `next` is where to continue; done when the range is covered.
  // A store that keeps no Paxos state has none to scan.
  struct PaxosScanBatch {
    std::vector<std::pair<std::string, AcceptorState>> states;
    std::string next;
    bool done = false;
  };
  virtual Result<PaxosScanBatch> ScanPaxos(std::string_view start, std::string_view end,
                                           size_t max_keys, size_t max_examined,
                                           const std::function<bool(std::string_view)>& want) {
    (void)start, (void)end, (void)max_keys, (void)max_examined, (void)want;
    PaxosScanBatch none;
    none.done = true;
    return none;
  }
};

struct NodeOptions {
  int n = 3;                        // replicas per key
  int64_t request_timeout_ms = 2000;
  size_t max_inflight = 10000;      // coordinated requests at once; more are refused (kBusy)
  // Answered reads wait for their late replicas' replies (to repair them) while the
  // merged values they hold stay under this many bytes; past it they are let go at
  // once, as past max_inflight (a client reading a large key many times must not make
  // the node keep every replica's copy).
  size_t max_answered_read_bytes = 64u << 20;
  ObjectLimits limits;
  bool record_writes = false;       // fill Outbox::writes (simulator, tracing)
  // The name this node's dots carry; empty: the node id. The shell gives each data
  // directory its own (node id plus an incarnation made when the directory was
  // created), so a node that lost its data never reissues a dot it issued before.
  std::string actor;
  // Partition transfer pacing: at least this long between two batches from one source.
  int64_t transfer_interval_ms = 0;
  // Test-only, deliberately broken: acknowledge writes before W replicas answered.
  bool unsafe_ack_before_quorum = false;
  // Where this incarnation's request ids start. Replies are matched by request id, so a
  // restarted node must not reuse the ids of its previous life (a late reply would
  // answer the wrong request): the shell passes a random start, the simulator a
  // different one per boot.
  uint64_t first_request_id = 1;
};

struct ClientResult {
  uint64_t client_req = 0;
  Status status;
  bool applied = true;  // writes: false when the condition (NX/XX/if-live) did not hold
  Object object;        // reads: the merge of the replies
  // What the result means if the shell's commit of the round that produced it fails
  // (then nothing staged in the round is durable and none of its sends leave):
  //   kStands      it does not depend on the round (an earlier round's write, a
  //                forwarded result, a refusal): send it as it is;
  //   kNotApplied  a write staged here in this round, or a read (which may show such
  //                writes): nothing of it is stored here or was sent anywhere;
  //   kUnknown     a CONSISTENT result: acceptors elsewhere may hold its proposal.
  enum class OnCommitFailure { kStands, kNotApplied, kUnknown };
  OnCommitFailure on_commit_failure = OnCommitFailure::kStands;
};

// A write this node coordinated (for the simulator's invariants and for tracing).
struct WriteRecord {
  std::string key;
  Dot dot;
  VClock context;
  std::string value;
  bool tombstone = false;
};

struct Outbox {
  std::vector<std::pair<std::string, PeerMessage>> sends;  // (destination, message)
  std::vector<ClientResult> results;
  std::vector<WriteRecord> writes;
  bool empty() const { return sends.empty() && results.empty() && writes.empty(); }
};

class NodeCore {
 public:
  NodeCore(std::string self, LocalStore& store, NodeOptions options);

  const std::string& self() const { return self_; }
  const NodeOptions& options() const { return options_; }
  void SetRing(Ring ring) { SetRings(ring, ring, 0); }
  // Membership changes in flight (core/gossip.h): `read` holds the data now, `write`
  // will. Reads use the read ring; a write is coordinated by a read-ring replica, sent to
  // both preference lists, and needs its W acks from read-ring replicas, so a quorum
  // read of either ring's settled owners sees it. When this node gains partitions in
  // `write` it copies them from their read-ring replicas (PullRequest batches, one at a
  // time per source, retried on timeout); Synced() then reports `write_fingerprint`.
  void SetRings(Ring read, Ring write, uint64_t write_fingerprint);
  const std::optional<Ring>& ring() const { return ring_; }
  const std::optional<Ring>& write_ring() const { return write_ring_; }
  // Copies start only once every member that may coordinate writes knows the write
  // ring (core/gossip.h MoveVisible); until then a write acknowledged through a node
  // with an older view could land on the old owners behind the copy's back.
  void AllowTransfers(bool allowed) { transfers_allowed_ = allowed; }
  // The write-ring fingerprint whose partitions this node holds (0 before any).
  uint64_t Synced() const { return synced_; }
  // Partitions still being copied, for INFO.
  size_t TransfersPending() const;
  uint64_t transferred_objects() const { return transferred_objects_; }
  uint64_t transferred_paxos_states() const { return transferred_paxos_states_; }
  // Whether messages to `node` can be delivered now (the node itself always can).
  void SetReachable(const std::string& node, bool up);
  bool IsReachable(const std::string& node) const;

  // The key's preference list under the current ring (at most n nodes).
  std::vector<std::string> Replicas(std::string_view key) const;
  // n capped by the cluster size: what "all" and "quorum" mean for this cluster.
  int EffectiveN() const;

  // REQUIRES: 1 <= r <= EffectiveN-independent bound (the caller validated), 0 <= pr <= r.
  void StartGet(uint64_t client_req, const std::string& key, int r, int pr, int64_t now_ms);
  void StartPut(uint64_t client_req, const std::string& key, WriteSpec spec, int w, int pw,
                int64_t now_ms);
  // A CONSISTENT read (`read`) or write (`spec`) of `key`: linearizable, through a
  // Paxos round over a majority of the key's primaries (core/paxos.h). Results:
  // kUnavailable (nothing applied), kTimeout (outcome unknown), or ok with `applied`
  // (writes) and `object` (the agreed object).
  void StartConsistent(uint64_t client_req, const std::string& key, bool read, WriteSpec spec,
                       int64_t now_ms);
  void OnMessage(const std::string& from, const PeerMessage& msg, int64_t now_ms);
  void Tick(int64_t now_ms);

  // Enables sloppy quorum (if options.sloppy_quorum) and hinted handoff with `hints`
  // (not owned; must outlive this core). Without a HintStore writes stay strict.
  void SetHintStore(HintStore* hints, HandoffOptions options);
  // Replays hints to reachable targets (rate-limited) and drops hints older than
  // max_hint_age_ms. `wall_ms`: wall clock, the clock hints are stamped with.
  void ReplayHints(int64_t now_ms, int64_t wall_ms);
  const HandoffStats& handoff_stats() const { return handoff_stats_; }
  size_t replays_in_flight() const { return replays_.size(); }

  Outbox TakeOutbox();
  // The shell could not commit what was staged before the last TakeOutbox (a full
  // disk): writes whose local copy was staged in that round exist nowhere (their
  // replica writes were not sent either), so they are answered now with `why`
  // (kIOError: not applied) instead of waiting for acks that cannot come.
  void CommitFailed(const Status& why);
  bool HasOutput() const { return !out_.empty(); }
  // Requests not yet answered (answered reads may still wait for late replies to
  // repair replicas; they do not count, and are let go when there are too many).
  size_t inflight() const {
    return gets_.size() - answered_gets_ + puts_.size() - answered_puts_ + forwards_.size() +
           consistent_.size();
  }
  // Counters of the CONSISTENT path, for INFO.
  struct ConsistentStats {
    uint64_t rounds = 0;     // prepare phases started (including retries)
    uint64_t chosen = 0;     // operations answered ok
    uint64_t retries = 0;    // rounds restarted after a refusal
    uint64_t unavailable = 0;
    uint64_t timeouts = 0;
    uint64_t forwarded = 0;  // handed to another primary
  };
  const ConsistentStats& consistent_stats() const { return consistent_stats_; }

 private:
  // Who is waiting for a write's outcome: a local client or a forwarding node.
  struct Origin {
    uint64_t client_req = 0;  // local client request (when node is empty)
    std::string node;         // forwarding node
    uint64_t remote_req = 0;  // its ForwardPut req_id
  };
  struct PendingGet {
    uint64_t client_req;
    std::string key;
    GetCoordinator coord;
    bool answered = false;
    size_t answered_bytes = 0;  // value bytes of the merged object when answered
    bool self_not_authoritative = false;  // this node's copy was merged without a vote
  };
  struct PendingPut {
    Origin origin;
    PutCoordinator coord;
    std::string key;
    WriteSpec spec;
    // Conditional writes (NX, XX, DEL) first read the key from the replicas, R = W, so
    // that the condition and the new version's context see more than this replica.
    std::optional<GetCoordinator> read;
    // Unreachable primaries with no substitute: the coordinator keeps their hints.
    std::vector<std::string> self_hints;
    // With hints on, an answered write waits (until every target answered or the
    // deadline) for the targets that have not acked, and keeps a hint for each of them.
    int64_t deadline_ms = 0;
    bool applied = false;          // `sent` was staged here and sent to the targets
    Object sent;
    std::set<std::string> acked;   // targets that acknowledged
    std::set<std::string> answered_by;
    bool answered = false;         // the client (or forwarder) has its answer
    // A move in flight: the write also needs W acks from the key's new owners (the
    // write ring's preference list), so that old and new owners each hold a quorum of it
    // whenever the switch happens (joint quorums, as in Raft's joint consensus).
    std::vector<std::string> new_owners;
    int need_new = 0;
    std::set<std::string> new_acks;
    bool read_done = false;  // the read before the write happened
    bool staged = false;     // the new version was staged here (ApplyPut) ...
    uint64_t staged_round = 0;  // ... before this many TakeOutbox calls
  };
  struct PendingReplay {
    std::string target;
    std::string key;
    Object sent;
    int64_t deadline_ms;
  };
  struct PendingForward {
    uint64_t client_req;
    std::string to;
    int64_t deadline_ms;
  };

  // REQUIRES: replicas == Replicas(key) and this node is among them.
  void Coordinate(Origin origin, const std::string& key, const std::vector<std::string>& replicas,
                  WriteSpec spec, int w, int pw, int64_t now_ms);
  // The reachable ones among `replicas`, as primary targets.
  std::vector<Target> ReachableTargets(const std::vector<std::string>& replicas) const;
  // Where a write goes: the reachable primaries plus, with sloppy quorum, substitutes.
  std::vector<Target> WriteTargets(const std::string& key,
                                   const std::vector<std::string>& replicas) const;
  bool Sloppy() const { return hints_ != nullptr && handoff_.sloppy_quorum; }
  // Stores `obj` as a hint for `target` here, counting it; false if refused.
  Status AddHint(const std::string& target, const std::string& key, const Object& obj);
  void HandleReplayAck(std::map<uint64_t, PendingReplay>::iterator it, const ReplicaWriteAck& m);
  void Finish(const Origin& origin, const Status& status, bool applied,
              ClientResult::OnCommitFailure on_failure = ClientResult::OnCommitFailure::kStands);
  void FinishPut(std::map<uint64_t, PendingPut>::iterator it);
  // Forgets an answered write, keeping hints for its targets that did not ack.
  void RetirePut(std::map<uint64_t, PendingPut>::iterator it);
  // Records a replica's ack; finishes the write when both quorums are met or failed.
  void OnPutAck(std::map<uint64_t, PendingPut>::iterator it, const std::string& node, bool ok);
  // Whether the write is decided (both quorums met, or the old one failed, or the time is up).
  bool PutDecided(const PendingPut& p, int64_t now_ms) const;
  // Applies the write locally and sends it to the replicas (after the read, if any).
  void ApplyPut(std::map<uint64_t, PendingPut>::iterator it);
  void AnswerGet(PendingGet& g);
  // Repairs and forgets a read once every replica answered, or at once if too many
  // answered reads are waiting. Returns the next iterator.
  std::map<uint64_t, PendingGet>::iterator MaybeRetire(std::map<uint64_t, PendingGet>::iterator it);
  void RepairAfterGet(PendingGet& g);
  void MergeLocally(const std::string& key, const Object& incoming, Status* status);
  // The key's object merged with the hints this node keeps for it (for any target):
  // what a replica or a substitute answers a read with.
  Result<Object> ReadWithHints(const std::string& key);
  // Starts the read from the write's targets that precedes a conditional write or a
  // write this node cannot vouch for the key's copy of (LocalStore::Authoritative).
  void StartReadBeforeWrite(std::map<uint64_t, PendingPut>::iterator it);
  bool AtCapacity() const { return inflight() >= options_.max_inflight; }

  void HandleWrite(const std::string& from, const ReplicaWrite& m);
  void HandleRead(const std::string& from, const ReplicaRead& m);
  void HandleWriteAck(const std::string& from, const ReplicaWriteAck& m);
  void HandleReadReply(const std::string& from, const ReplicaReadReply& m);
  void HandleForwardPut(const std::string& from, const ForwardPut& m, int64_t now_ms);
  void HandleForwardResult(const ForwardResult& m);
  void HandlePullRequest(const std::string& from, const PullRequest& m);
  void HandlePullBatch(const std::string& from, const PullBatch& m, int64_t now_ms);
  // Sends the next PullRequest of each unfinished transfer that has none in flight (or
  // whose last one timed out), and records completion.
  void DriveTransfers(int64_t now_ms);
  // The plan is complete: report its ring synced and hold its partitions.
  void MarkSynced();
  // Write targets that are not read-ring replicas of the key (a move in flight).
  std::vector<std::string> PendingReplicas(std::string_view key) const;

  struct Transfer {
    std::set<uint32_t> partitions;
    std::string cursor;
    bool done = false;
    uint64_t req_id = 0;  // the request in flight (0: none)
    int64_t sent_ms = 0;
    int64_t next_ms = 0;  // no request before this (pacing)
  };

  const std::string self_;
  const std::string actor_;
  LocalStore& store_;
  const NodeOptions options_;
  std::optional<Ring> ring_;
  std::optional<Ring> write_ring_;
  uint64_t plan_fingerprint_ = 0;
  uint64_t synced_ = 0;
  // Partitions this node holds every write of: those of the write ring it last synced
  // to (unset until the first ring, which is trusted). plan_owned_: the planned ring's.
  std::optional<std::set<uint32_t>> held_;
  std::set<uint32_t> plan_owned_;
  std::map<std::string, Transfer> transfers_;  // source -> what this node copies from it
  uint64_t transferred_objects_ = 0;
  uint64_t transferred_paxos_states_ = 0;
  bool transfers_allowed_ = true;
  std::set<std::string> unreachable_;
  uint64_t next_req_;
  std::map<uint64_t, PendingGet> gets_;
  size_t answered_gets_ = 0;
  size_t answered_get_bytes_ = 0;  // sum of answered_bytes over answered gets_
  std::map<uint64_t, PendingPut> puts_;
  size_t answered_puts_ = 0;
  std::map<uint64_t, PendingForward> forwards_;
  Outbox out_;
  uint64_t round_ = 0;  // TakeOutbox calls so far
  // Hinted handoff.
  HintStore* hints_ = nullptr;
  HandoffOptions handoff_;
  HandoffStats handoff_stats_;
  RateLimiter replay_limiter_{0};
  std::map<uint64_t, PendingReplay> replays_;
  std::set<std::pair<std::string, std::string>> replaying_;  // (target, key) in replays_
  std::map<std::string, std::string> replay_cursor_;         // per target: next key to scan
  // Expiry of hints that cannot be replayed now (target down or gone).
  static constexpr size_t kExpireBatch = 256;
  bool HintExpired(const Hint& h) const;
  void ExpireHints(const std::string& target, int64_t now_ms);
  int64_t wall_ms_ = 0;  // wall clock as of the last ReplayHints (hints are stamped with it)
  std::map<std::string, std::string> expire_cursor_;
  std::map<std::string, int64_t> expire_next_ms_;

  // ---- CONSISTENT operations (node_core_consistent.cc) ----
  struct PendingConsistent {
    enum class State { kQueued, kRound, kBackoff };
    Origin origin;
    std::string key;
    StrongOp op;
    int64_t deadline_ms = 0;
    State state = State::kQueued;
    uint64_t round_req = 0;           // req id of the current round's messages
    std::optional<PaxosRound> round;
    StrongProposal proposal;
    bool accept_sent = false;         // a write's new version was proposed: outcome unknown on failure
    uint64_t highest_seen = 0;        // highest ballot counter heard of, for the next ballot
    int attempts = 0;
    int64_t retry_at_ms = 0;
  };
  using ConsistentIt = std::map<uint64_t, PendingConsistent>::iterator;
  void CoordinateConsistent(Origin origin, const std::string& key, StrongOp op, int64_t now_ms);
  void StartRound(ConsistentIt it, int64_t now_ms);
  void SendAccept(ConsistentIt it, int64_t now_ms);
  void OnRoundFailed(ConsistentIt it, int64_t now_ms);
  void OnChosen(ConsistentIt it, int64_t now_ms);
  // Answers the operation, forgets it and starts the next one queued for its key.
  void FinishConsistent(ConsistentIt it, const Status& status, bool applied, const Object& object,
                        int64_t now_ms);
  // Fails with kTimeout if a write's new version may have been accepted, else kUnavailable.
  void FailConsistent(ConsistentIt it, const std::string& why, int64_t now_ms);
  void ReplyConsistent(const Origin& origin, const Status& status, bool applied, const Object& object);
  void TickConsistent(int64_t now_ms);
  void HandlePaxosPrepare(const std::string& from, const PaxosPrepare& m);
  void HandlePaxosPromise(const std::string& from, const PaxosPromise& m, int64_t now_ms);
  void HandlePaxosAccept(const std::string& from, const PaxosAccept& m);
  void HandlePaxosAccepted(const std::string& from, const PaxosAccepted& m, int64_t now_ms);
  void HandlePaxosCommit(const PaxosCommit& m);
  void HandleForwardConsistent(const std::string& from, const ForwardConsistent& m, int64_t now_ms);
  void HandleConsistentResult(const ConsistentResult& m);
  bool IsPrimary(const std::string& key) const;

  std::map<uint64_t, PendingConsistent> consistent_;  // by operation id
  std::map<uint64_t, uint64_t> rounds_;               // round req id -> operation id
  std::map<std::string, std::deque<uint64_t>> key_queue_;  // key -> operations, running first
  ConsistentStats consistent_stats_;
};

}  // namespace itsuka::core
