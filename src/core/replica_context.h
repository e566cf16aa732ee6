// What every room of a node shares (core/node_core.h composes the rooms): the node's
// name and actor, its LocalStore, its options, the rings, which peers are reachable,
// the Outbox the rooms append their effects to, the count of commit rounds, and the
// request-id registry (core/requests.h). Also the storage-facing types the shell
// implements or consumes: LocalStore, NodeOptions, ClientResult, WriteRecord, Outbox.
//
// The helpers here are the ones more than one room needs: who replicates a key, who
// is reachable, where a move sends a key, merging an object into the local copy.
//
// No clocks, no I/O, no globals. Thread-compatible.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/messages.h"
#include "core/object.h"
#include "core/paxos.h"
#include "core/quorum.h"
#include "core/recent_writes.h"
#include "core/requests.h"
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
  // Read-your-writes through this node (core/recent_writes.h): the bounds of the
  // objects of recently acknowledged writes it keeps per key.
  RecentWritesOptions recent_writes;
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
  // Keyspace results (server/keyspace.h): SCAN/KEYS's keys and SCAN's next cursor,
  // DBSIZE's count.
  std::vector<std::string> keys;
  uint64_t cursor = 0;
  uint64_t count = 0;
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

// Who is waiting for a coordinated operation's outcome: a local client or a
// forwarding node.
struct Origin {
  uint64_t client_req = 0;  // local client request (when node is empty)
  std::string node;         // forwarding node
  uint64_t remote_req = 0;  // its forward's req_id
};

// A fingerprint of a set of nodes (order does not matter): what Paxos messages carry
// to name the owners a round counts majorities of.
uint64_t OwnersFingerprint(std::vector<std::string> nodes);

struct ReplicaContext {
  ReplicaContext(std::string self_name, LocalStore& local_store, NodeOptions node_options);

  // Whether messages to `node` can be delivered now (the node itself always can).
  bool IsReachable(const std::string& node) const;
  // The key's preference list under the read ring (at most n nodes).
  std::vector<std::string> Replicas(std::string_view key) const;
  // Whether this node / `node` is in the key's (read-ring) preference list.
  bool IsPrimary(std::string_view key) const;
  bool IsReplica(std::string_view key, const std::string& node) const;
  // Write-ring replicas of the key that are not read-ring replicas (a move in flight).
  std::vector<std::string> PendingReplicas(std::string_view key) const;
  // The key's preference list under the write ring (the read ring's without one).
  std::vector<std::string> WriteReplicas(std::string_view key) const;
  // Whether this node is in the key's read-ring or write-ring list: a Paxos acceptor
  // of the key while a move is in flight (docs/DESIGN.md 5.6).
  bool IsOwner(std::string_view key) const;
  // The reachable ones among `replicas`, as primary targets.
  std::vector<Target> ReachableTargets(const std::vector<std::string>& replicas) const;
  // Merges `incoming` into the stored copy of `key` (staging it if it changed).
  Status MergeLocally(const std::string& key, const Object& incoming);

  const std::string self;
  const std::string actor;  // the name this node's dots carry
  LocalStore& store;
  const NodeOptions options;
  std::optional<Ring> ring;        // read ring: owners now
  std::optional<Ring> write_ring;  // owners to be (== ring when no move is in flight)
  std::set<std::string> unreachable;
  Outbox out;
  uint64_t round = 0;  // TakeOutbox calls so far
  RequestRegistry requests;
  // Objects of the writes this node recently acknowledged to its clients, merged into
  // the eventual operations it starts on the same keys (read-your-writes).
  RecentWrites recent;
  // Whether the node coordinates as many requests as it may (NodeOptions::max_inflight);
  // NodeCore sums the rooms' counts.
  std::function<bool()> at_capacity;
};

}  // namespace itsuka::core
