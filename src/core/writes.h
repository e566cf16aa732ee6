// The write room of a node (Dynamo §4.5; Riak's put FSM): writes this node
// coordinates, the read before a conditional write, joint quorums during moves,
// forwarding, and the replica's write side.
//
//  - Coordination: only a primary replica of the key coordinates, because the new
//    version's dot must come from a node whose stored object holds every dot it issued
//    for that key (the dotted-version-vector invariant). Another node forwards the write
//    to the first reachable primary (Forwarder below). The coordinator applies the write
//    locally, sends the resulting object to the other reachable primaries (and, with
//    sloppy quorum, substitutes; core/handoff.h), which merge it, and replies once W acks
//    (PW from primaries) arrived. A conditional write (NX, XX, DEL), or one through a copy
//    this node cannot vouch for, first reads the key from the write's targets (R = W) and
//    merges what they hold.
//  - Read-your-writes (core/recent_writes.h): the node a client's write is started on
//    sends along what it recently acknowledged for the key (ForwardPut::seen, or the
//    local record), and the coordinator merges it into its copy before it checks the
//    condition and builds the new version; an OK write's object is recorded there (a
//    local client) or returned in ForwardResult::object (a forwarding node records it).
//  - Moves: while the read ring and the write ring differ, the write also needs W acks
//    from the key's write-ring owners (joint quorums, as in Raft's joint consensus), and a
//    current owner passes replica writes on to the new owners.
//  - After the answer, with hints on, a write waits (until every target answered or the
//    deadline) and keeps a hint for each target that did not ack.
//  - Inputs: Start, HandleForwardPut, HandleWrite (the replica side), OnAck / OnReadReply
//    (replies to ids this room opened, routed by the request-id registry), Tick (this
//    room's timeout rules: the read before the write, the quorums, the wait for late
//    acks), CommitFailed.
//  - Effects: ReplicaRead / ReplicaWrite / ForwardPut / ForwardResult / ReplicaWriteAck
//    sends, client results and WriteRecords in the shared Outbox; objects and hints staged.
//
// No clocks, no I/O. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/handoff.h"
#include "core/quorum.h"
#include "core/replica_context.h"

namespace itsuka::core {

// Requests this node handed to another coordinator (a write to a primary, a CONSISTENT
// operation to the key's first reachable primary), awaiting its result.
class Forwarder {
 public:
  explicit Forwarder(ReplicaContext& ctx) : ctx_(ctx) {}
  // Opens a forward of the client request to `to` and returns the id the forwarded
  // message must carry (the caller sends it). With `record_key`, an eventual write of
  // that key: its applied result's object is kept in ctx.recent (read-your-writes).
  uint64_t Open(uint64_t client_req, const std::string& to, int64_t now_ms,
                std::optional<std::string> record_key = std::nullopt);
  // The coordinator's result of the forward `req_id` (owned by Room::kForwards); one
  // from another node than the forward went to is dropped (it answers something else).
  void OnResult(uint64_t req_id, const std::string& from, const Status& status, bool applied,
                const Object& object);
  // This room's timeout rule: a forward unanswered by its deadline has outcome unknown.
  void Tick(int64_t now_ms);
  size_t inflight() const { return forwards_.size(); }

 private:
  struct PendingForward {
    uint64_t client_req;
    std::string to;
    int64_t opened_ms;
    int64_t deadline_ms;
    std::optional<std::string> record_key;
  };
  ReplicaContext& ctx_;
  std::map<uint64_t, PendingForward> forwards_;  // by request id
};

class Writes {
 public:
  Writes(ReplicaContext& ctx, Handoff& handoff, Forwarder& forwarder)
      : ctx_(ctx), handoff_(handoff), forwarder_(forwarder) {}

  void Start(uint64_t client_req, const std::string& key, WriteSpec spec, int w, int pw,
             int64_t now_ms);
  void HandleForwardPut(const std::string& from, const ForwardPut& m, int64_t now_ms);
  // The replica side: merges (or keeps as a hint) a coordinator's ReplicaWrite, acks it.
  void HandleWrite(const std::string& from, const ReplicaWrite& m);
  // A target's ack of the write `req_id` (owned by this room).
  void OnAck(uint64_t req_id, const std::string& from, const ReplicaWriteAck& m);
  // A target's reply to the read before the write `req_id`.
  void OnReadReply(uint64_t req_id, const std::string& from, const ReplicaReadReply& m);
  void Tick(int64_t now_ms);
  // The commit of the last round failed: writes staged in it are answered with `why`.
  void CommitFailed(const Status& why);

  // Writes not yet answered.
  size_t inflight() const { return puts_.size() - answered_; }
  // Client writes (eventual) this node coordinated itself, and those it forwarded to a
  // primary because it is none (or not authoritative): how well clients route (INFO
  // stats client_writes_coordinated / client_writes_forwarded).
  uint64_t coordinated() const { return coordinated_; }
  uint64_t forwarded() const { return forwarded_; }

 private:
  struct PendingPut {
    PendingPut(Origin o, PutCoordinator c, std::string k, WriteSpec s)
        : origin(std::move(o)), coord(std::move(c)), key(std::move(k)), spec(std::move(s)) {}
    Origin origin;
    PutCoordinator coord;
    std::string key;
    WriteSpec spec;
    int64_t started_ms = 0;
    // What the client's node recently acknowledged for the key (core/recent_writes.h):
    // merged into the local copy before the write is applied, then cleared.
    Object seen;
    // Conditional writes (NX, XX, DEL) first read the key from the replicas, R = W, so
    // that the condition and the new version's context see more than this replica.
    std::optional<GetCoordinator> read;
    // Unreachable primaries with no substitute: the coordinator keeps their hints.
    std::vector<std::string> self_hints;
    // With hints on, an answered write waits (until every target answered or the
    // deadline) for the targets that have not acked, and keeps a hint for each of them.
    int64_t deadline_ms = 0;
    bool applied = false;          // with hints: the put waits to hint `sent` to late targets
    Object sent;                   // the new version's object, once staged here
    std::set<std::string> acked;   // targets that acknowledged
    std::set<std::string> answered_by;
    bool answered = false;         // the client (or forwarder) has its answer
    // A move in flight: the write also needs W acks from the key's new owners (the
    // write ring's preference list), so that old and new owners each hold a quorum of it
    // whenever the switch happens (joint quorums).
    std::vector<std::string> new_owners;
    int need_new = 0;
    std::set<std::string> new_acks;
    bool read_done = false;  // the read before the write happened
    bool staged = false;     // the new version was staged here (Apply) ...
    uint64_t staged_round = 0;  // ... before this many TakeOutbox calls
  };
  using PutIt = std::map<uint64_t, PendingPut>::iterator;

  // REQUIRES: replicas == ctx.Replicas(key) and this node is among them. `seen`: what
  // the client's node recently acknowledged for the key (empty if nothing).
  void Coordinate(Origin origin, const std::string& key, const std::vector<std::string>& replicas,
                  WriteSpec spec, int w, int pw, Object seen, int64_t now_ms);
  // Where a write goes: the reachable primaries plus, with sloppy quorum, substitutes.
  std::vector<Target> WriteTargets(const std::string& key,
                                   const std::vector<std::string>& replicas) const;
  // Starts the read from the write's targets that precedes a conditional write or a
  // write this node cannot vouch for the key's copy of (LocalStore::Authoritative).
  void StartReadBeforeWrite(PutIt it);
  // Applies the write locally and sends it to the replicas (after the read, if any).
  void Apply(PutIt it);
  // Stages the new version here and sends it to the targets.
  void StageAndSend(PutIt it, const Object& next);
  // Records a replica's ack; finishes the write when both quorums are met or failed.
  void OnPutAck(PutIt it, const std::string& node, bool ok);
  // Whether the acks decide the write: both quorums met, or the old one failed.
  bool QuorumsDecided(const PendingPut& p) const;
  // Likewise, or the old quorum is met and the time for the new owners is up.
  bool DecidedAt(const PendingPut& p, int64_t now_ms) const;
  // `written`: an applied write's object, for a forwarding node's read-your-writes.
  void Finish(const Origin& origin, const Status& status, bool applied,
              ClientResult::OnCommitFailure on_failure = ClientResult::OnCommitFailure::kStands,
              const Object& written = Object());
  void FinishPut(PutIt it);
  // Forgets an answered write, keeping hints for its targets that did not ack.
  void RetirePut(PutIt it);
  PutIt Forget(PutIt it);

  ReplicaContext& ctx_;
  Handoff& handoff_;
  Forwarder& forwarder_;
  std::map<uint64_t, PendingPut> puts_;  // by request id
  size_t answered_ = 0;
  uint64_t coordinated_ = 0;
  uint64_t forwarded_ = 0;
};

}  // namespace itsuka::core
