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
//  - Moves (core/gossip.h): while the read ring (owners now) and the write ring (owners
//    to be) differ, reads use the read ring; writes are coordinated by a read-ring
//    replica and need W acks from each ring's preference list (joint quorums), and a
//    node copies the partitions it gains from their read-ring replicas (PullRequest /
//    PullBatch) before it reports itself synced.
//
// No clocks, no I/O, no globals; deterministic given its inputs. Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/messages.h"
#include "core/object.h"
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
};

struct NodeOptions {
  int n = 3;                        // replicas per key
  int64_t request_timeout_ms = 2000;
  size_t max_inflight = 10000;      // coordinated requests at once; more are refused (kBusy)
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
};

struct ClientResult {
  uint64_t client_req = 0;
  Status status;
  bool applied = true;  // writes: false when the condition (NX/XX/if-live) did not hold
  Object object;        // reads: the merge of the replies
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
  void OnMessage(const std::string& from, const PeerMessage& msg, int64_t now_ms);
  void Tick(int64_t now_ms);

  Outbox TakeOutbox();
  bool HasOutput() const { return !out_.empty(); }
  // Requests not yet answered (answered reads may still wait for late replies to
  // repair replicas; they do not count, and are let go when there are too many).
  size_t inflight() const { return gets_.size() - answered_gets_ + puts_.size() + forwards_.size(); }

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
  };
  struct PendingPut {
    Origin origin;
    PutCoordinator coord;
    std::string key;
    WriteSpec spec;
    // Conditional writes (NX, XX, DEL) first read the key from the replicas, R = W, so
    // that the condition and the new version's context see more than this replica.
    std::optional<GetCoordinator> read;
    // A move in flight: the write also needs W acks from the key's new owners (the
    // write ring's preference list), so that old and new owners each hold a quorum of it
    // whenever the switch happens (joint quorums, as in Raft's joint consensus).
    std::vector<std::string> new_owners;
    int need_new = 0;
    std::set<std::string> new_acks;
    int64_t deadline_ms = 0;
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
  void Finish(const Origin& origin, const Status& status, bool applied);
  void FinishPut(std::map<uint64_t, PendingPut>::iterator it);
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
  std::map<std::string, Transfer> transfers_;  // source -> what this node copies from it
  uint64_t transferred_objects_ = 0;
  bool transfers_allowed_ = true;
  std::set<std::string> unreachable_;
  uint64_t next_req_ = 1;
  std::map<uint64_t, PendingGet> gets_;
  size_t answered_gets_ = 0;
  std::map<uint64_t, PendingPut> puts_;
  std::map<uint64_t, PendingForward> forwards_;
  Outbox out_;
};

}  // namespace itsuka::core
