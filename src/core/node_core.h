// The replication logic of one node, as a pure state machine, composed of one room per
// mechanism (as etcd's raft composes tracker, quorum and confchange):
//   core/reads.h      read coordination, answering, read repair, the replica's read side
//   core/writes.h     write coordination (with the read before a conditional write and
//                     joint quorums during moves), forwarding, the replica's write side
//   core/handoff.h    hint creation, hint replay, replay acks, expiry
//   core/transfer.h   transfer planning and both sides of partition transfers
//   core/consensus.h  CONSISTENT coordination and the Paxos acceptor
// They share a ReplicaContext (core/replica_context.h: the node's name, store, options,
// rings, reachability, Outbox) and a request-id registry (core/requests.h): every
// request id is opened by the room that sends it, and NodeCore routes each reply to its
// owner; each room applies its own timeout rule in its own Tick.
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
//    core/consensus.h.
//  - Moves (core/gossip.h): while the read ring (owners now) and the write ring (owners
//    to be) differ, reads use the read ring; writes are coordinated by a read-ring
//    replica and need W acks from each ring's preference list (joint quorums), and a
//    node transfers the partitions it gains from their read-ring replicas (TransferRequest /
//    TransferBatch) before it reports itself synced. A transfer carries each key's Paxos
//    acceptor state with its data object, which keeps CONSISTENT reads linearizable
//    across a move (CONSISTENT operations are refused while their partition moves); why
//    this suffices: see docs/DESIGN.md, §5.6 "CONSISTENT across moves".
//
// No clocks, no I/O, no globals; deterministic given its inputs. Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/consensus.h"
#include "core/handoff.h"
#include "core/hints.h"
#include "core/messages.h"
#include "core/object.h"
#include "core/paxos.h"
#include "core/quorum.h"
#include "core/reads.h"
#include "core/replica_context.h"
#include "core/requests.h"
#include "core/ring.h"
#include "core/transfer.h"
#include "core/writes.h"

namespace itsuka::core {

// LocalStore, NodeOptions, ClientResult, WriteRecord and Outbox: core/replica_context.h.

class NodeCore {
 public:
  NodeCore(std::string self, LocalStore& store, NodeOptions options);
  NodeCore(const NodeCore&) = delete;
  NodeCore& operator=(const NodeCore&) = delete;

  const std::string& self() const { return ctx_.self; }
  const NodeOptions& options() const { return ctx_.options; }
  void SetRing(Ring ring) { SetRings(ring, ring, 0); }
  // Membership changes in flight (core/gossip.h): `read` holds the data now, `write`
  // will. Reads use the read ring; a write is coordinated by a read-ring replica, sent to
  // both preference lists, and needs its W acks from read-ring replicas, so a quorum
  // read of either ring's settled owners sees it. When this node gains partitions in
  // `write` it transfers them from their read-ring replicas (TransferRequest batches, one at
  // a time per source, retried on timeout); Synced() then reports `write_fingerprint`.
  void SetRings(Ring read, Ring write, uint64_t write_fingerprint);
  const std::optional<Ring>& ring() const { return ctx_.ring; }
  const std::optional<Ring>& write_ring() const { return ctx_.write_ring; }
  // Transfers start only once every member that may coordinate writes knows the write
  // ring (core/gossip.h MoveVisible); until then a write acknowledged through a node
  // with an older view could land on the old owners behind the transfer's back.
  void AllowTransfers(bool allowed) { transfers_.Allow(allowed); }
  // The write-ring fingerprint whose partitions this node holds (0 before any).
  uint64_t Synced() const { return transfers_.synced(); }
  // Partitions still being transferred, for INFO.
  size_t TransfersPending() const { return transfers_.pending(); }
  // The move's progress here (core/transfer.h TransferProgress), for INFO.
  TransferProgress transfer_progress() const { return transfers_.progress(); }
  uint64_t transferred_objects() const { return transfers_.transferred_objects(); }
  // Client writes coordinated here / forwarded to a primary (core/writes.h).
  uint64_t writes_coordinated() const { return writes_.coordinated(); }
  uint64_t writes_forwarded() const { return writes_.forwarded(); }
  std::vector<SourceTransferProgress> TransfersInProgress() const { return transfers_.Progress(); }
  uint64_t transferred_paxos_states() const { return transfers_.transferred_paxos_states(); }
  // Whether messages to `node` can be delivered now (the node itself always can).
  void SetReachable(const std::string& node, bool up);
  bool IsReachable(const std::string& node) const { return ctx_.IsReachable(node); }

  // The key's preference list under the current ring (at most n nodes).
  std::vector<std::string> Replicas(std::string_view key) const { return ctx_.Replicas(key); }
  // n capped by the cluster size: what "all" and "quorum" mean for this cluster.
  int EffectiveN() const;

  // REQUIRES: 1 <= r <= EffectiveN-independent bound (the caller validated), 0 <= pr <= r.
  void StartGet(uint64_t client_req, const std::string& key, int r, int pr, int64_t now_ms) {
    reads_.Start(client_req, key, r, pr, now_ms);
  }
  void StartPut(uint64_t client_req, const std::string& key, WriteSpec spec, int w, int pw,
                int64_t now_ms) {
    writes_.Start(client_req, key, std::move(spec), w, pw, now_ms);
  }
  // A CONSISTENT read (`read`) or write (`spec`) of `key`: linearizable, through a
  // Paxos round over a majority of the key's primaries (core/paxos.h). Results:
  // kUnavailable (nothing applied), kTimeout (outcome unknown), or ok with `applied`
  // (writes) and `object` (the agreed object).
  void StartConsistent(uint64_t client_req, const std::string& key, bool read, WriteSpec spec,
                       int64_t now_ms) {
    consensus_.Start(client_req, key, read, std::move(spec), now_ms);
  }
  // Requests go to the room that serves them; replies to the room that owns their id
  // (core/requests.h), and are dropped if no room does.
  void OnMessage(const std::string& from, const PeerMessage& msg, int64_t now_ms);
  // Each room's own timeouts and retries.
  void Tick(int64_t now_ms);

  // Enables sloppy quorum (if options.sloppy_quorum) and hinted handoff with `hints`
  // (not owned; must outlive this core). Without a HintStore writes stay strict.
  void SetHintStore(HintStore* hints, HandoffOptions options) { handoff_.SetStore(hints, options); }
  // Replays hints to reachable targets (rate-limited) and drops hints older than
  // max_hint_age_ms. `wall_ms`: wall clock, the clock hints are stamped with.
  void ReplayHints(int64_t now_ms, int64_t wall_ms) { handoff_.Replay(now_ms, wall_ms); }
  const HandoffStats& handoff_stats() const { return handoff_.stats(); }
  size_t replays_in_flight() const { return handoff_.in_flight(); }

  // The sends come out stamped (ring_version, core/peer_checks.h) with the version of
  // the read ring in force when the room made them: SetRings stamps what is pending
  // before it replaces the rings.
  Outbox TakeOutbox();
  // The shell could not commit what was staged before the last TakeOutbox (a full
  // disk): writes whose local copy was staged in that round exist nowhere (their
  // replica writes were not sent either), so they are answered now with `why`
  // (kIOError: not applied) instead of waiting for acks that cannot come.
  void CommitFailed(const Status& why) { writes_.CommitFailed(why); }
  bool HasOutput() const { return !ctx_.out.empty(); }
  // Requests not yet answered (answered reads may still wait for late replies to
  // repair replicas; they do not count, and are let go when there are too many).
  size_t inflight() const {
    return reads_.inflight() + writes_.inflight() + forwarder_.inflight() +
           consensus_.inflight();
  }
  // Read-your-writes through this node (core/recent_writes.h), for INFO.
  const RecentWrites& recent_writes() const { return ctx_.recent; }
  // Request ids whose replies some room still awaits (or would still take).
  size_t requests_open() const { return ctx_.requests.open(); }
  // Counters of the CONSISTENT path, for INFO (core/consensus.h).
  using ConsistentStats = core::ConsistentStats;
  const ConsistentStats& consistent_stats() const { return consensus_.stats(); }

 private:
  // Stamps the pending fenced sends that have no ring version with the read ring's.
  void StampSends();
  // Routes a reply to the room that opened its id.
  void RouteReply(const std::string& from, const PeerMessage& msg, uint64_t req_id,
                  int64_t now_ms);

  ReplicaContext ctx_;
  Handoff handoff_;
  Forwarder forwarder_;
  Reads reads_;
  Writes writes_;
  Transfers transfers_;
  Consensus consensus_;
};

}  // namespace itsuka::core
