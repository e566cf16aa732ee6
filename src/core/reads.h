// The read room of a node (Dynamo §4.5; Riak's get FSM): reads this node coordinates,
// their answers, the read repair after them, and the replica's read side.
//
//  - Coordination: any node coordinates a read. It asks the key's reachable primaries
//    (read ring), answers once R of them (PR primaries) replied with the merge of their
//    objects, and after every target replied (or the deadline) writes the merge back to
//    the replicas it supersedes (read repair). A copy this node cannot vouch for
//    (LocalStore::Authoritative) is merged without a vote, and repaired too.
//  - Digest reads: when this node is a target and its own copy votes, it reads that
//    copy first and sends the others digest-only reads carrying the copy's
//    ObjectDigest. A replica holding the same answers `same` (no object; it counts as
//    a reply of this node's copy, toward R and PR alike); any other answers with its
//    object, in the same round trip, so a mismatch is merged and repaired as before.
//    With R=1 the answer leaves at once; the digests only feed read repair. Otherwise
//    (no voting local copy) every target is sent a full read.
//  - Read-your-writes: the answer also merges the object of the writes of the key this
//    node recently acknowledged to its clients (ctx.recent), which a quorum of
//    primaries may not hold yet (their acks were a substitute's hints).
//  - Answered reads wait for late replies (to repair them) while they hold fewer than
//    NodeOptions::max_answered_read_bytes of values and number at most max_inflight;
//    past that they are repaired with what arrived and let go.
//  - Replica side: a ReplicaRead is answered with the local copy merged with the hints
//    kept for the key (core/handoff.h), with no vote if the copy is not authoritative.
//  - Inputs: Start, OnReply (a ReplicaReadReply to an id this room opened, routed by
//    the request-id registry), HandleRead, Tick (this room's timeout rule: a read whose
//    deadline passed is answered with what it has, and retired).
//  - Effects: ReplicaRead / ReplicaWrite (repair) sends and client results in the
//    shared Outbox; repairs of the local copy staged in the LocalStore.
//
// No clocks, no I/O. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/handoff.h"
#include "core/quorum.h"
#include "core/replica_context.h"

namespace itsuka::core {

class Reads {
 public:
  Reads(ReplicaContext& ctx, Handoff& handoff) : ctx_(ctx), handoff_(handoff) {}

  // REQUIRES: 1 <= r, 0 <= pr <= r (the caller validated).
  void Start(uint64_t client_req, const std::string& key, int r, int pr, int64_t now_ms);
  // A replica's reply to the read `req_id` (owned by this room).
  void OnReply(uint64_t req_id, const std::string& from, const ReplicaReadReply& m);
  // The replica side: answers a coordinator's ReplicaRead.
  void HandleRead(const std::string& from, const ReplicaRead& m);
  void Tick(int64_t now_ms);

  // Reads not yet answered.
  size_t inflight() const { return gets_.size() - answered_; }

 private:
  struct PendingGet {
    uint64_t client_req;
    std::string key;
    GetCoordinator coord;
    bool answered = false;
    size_t answered_bytes = 0;  // value bytes of the merged object when answered
    bool self_not_authoritative = false;  // this node's copy was merged without a vote
    // The other replicas were sent digest reads against this node's voting copy (its
    // reply in `coord`): a `same` answer stands for that copy.
    bool digest_only = false;
    // What this node recently acknowledged for the key (core/recent_writes.h): merged
    // into the answer (read-your-writes through one node).
    Object seen;
  };
  using GetIt = std::map<uint64_t, PendingGet>::iterator;
  void Answer(PendingGet& g);
  // Repairs and forgets a read once every replica answered, or at once if too many
  // answered reads are waiting. Returns the next iterator.
  GetIt MaybeRetire(GetIt it);
  void Forget(GetIt* it);
  void RepairAfterGet(PendingGet& g);

  ReplicaContext& ctx_;
  Handoff& handoff_;
  std::map<uint64_t, PendingGet> gets_;  // by request id
  size_t answered_ = 0;
  size_t answered_bytes_ = 0;  // sum of answered_bytes over answered gets_
};

}  // namespace itsuka::core
