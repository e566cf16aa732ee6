// The consensus room of a node: CONSISTENT operations, coordinated as per-key Paxos
// rounds over the key's primaries, and the Paxos acceptor (core/paxos.h has the design
// note and the round and acceptor state machines).
//
//  - Coordination: every operation on a key goes to its first reachable primary (others
//    forward it; core/writes.h Forwarder). One operation per key runs at a time on a
//    coordinator; the others queue behind it, so a coordinator never duels with itself.
//    A round that is refused backs off and retries, unless its write may already have
//    been accepted somewhere (then the outcome is unknown: kTimeout).
//  - Joint rounds: while a key's read-ring list O and write-ring list P differ (a move
//    in flight), each round needs promises and accepts from a majority of O AND a
//    majority of P (PaxosRound's groups); the owners are looked up for every round, not
//    once per operation. Messages name the round's owners (OwnersFingerprint of O and
//    of P).
//  - Acceptor: a node in the key's read-ring or write-ring list with an authoritative
//    copy answers prepares and accepts from its durable AcceptorState (staged before
//    the reply leaves) and merges commits. It answers only rounds over the same owners
//    as its own view of the key (CountsMe: both lists equal): once it knows of a move, a
//    round over the old owners alone is refused, and one over the new owners alone until
//    it saw the switch.
//  - CONSISTENT across moves: joint majorities while the move runs, and a transfer
//    carries acceptor states with the data (core/transfer.h) for rounds that ran before
//    the move was known; the argument is docs/DESIGN.md, section 5.6.
//  - Inputs: Start, HandleForward, the acceptor's Handle*, OnPromise / OnAccepted
//    (replies to round ids this room opened, routed by the request-id registry), Tick
//    (this room's timeout rules: the operation's deadline and the retry backoff).
//  - Effects: Paxos messages and ConsistentResults in the shared Outbox, client results,
//    acceptor states and chosen objects staged.
//
// No clocks, no I/O. Thread-compatible.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "core/paxos.h"
#include "core/replica_context.h"
#include "core/writes.h"

namespace itsuka::core {

// Counters of the CONSISTENT path, for INFO.
struct ConsistentStats {
  uint64_t rounds = 0;     // prepare phases started (including retries)
  uint64_t chosen = 0;     // operations answered ok
  uint64_t retries = 0;    // rounds restarted after a refusal
  uint64_t unavailable = 0;
  uint64_t timeouts = 0;
  uint64_t forwarded = 0;  // handed to another primary
  uint64_t joint_rounds = 0;    // rounds over old and new owners (a move in flight)
  uint64_t refused_owners = 0;  // prepares/accepts refused: the round's owners are not ours
};

class Consensus {
 public:
  Consensus(ReplicaContext& ctx, Forwarder& forwarder) : ctx_(ctx), forwarder_(forwarder) {}

  // A CONSISTENT read (`read`) or write (`spec`) of `key` for a local client.
  void Start(uint64_t client_req, const std::string& key, bool read, WriteSpec spec,
             int64_t now_ms);
  void HandleForward(const std::string& from, const ForwardConsistent& m, int64_t now_ms);
  // The acceptor.
  void HandlePrepare(const std::string& from, const PaxosPrepare& m);
  void HandleAccept(const std::string& from, const PaxosAccept& m);
  void HandleCommit(const PaxosCommit& m);
  // Acceptors' replies to the round `req_id` (owned by this room).
  void OnPromise(uint64_t req_id, const std::string& from, const PaxosPromise& m, int64_t now_ms);
  void OnAccepted(uint64_t req_id, const std::string& from, const PaxosAccepted& m,
                  int64_t now_ms);
  void Tick(int64_t now_ms);

  size_t inflight() const { return ops_.size(); }
  const ConsistentStats& stats() const { return stats_; }

 private:
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
    uint64_t read_owners = 0;   // the current round's owners, as its messages name them
    uint64_t write_owners = 0;
  };
  // Whose majorities a round on a key needs now: its read-ring list, and its write-ring
  // list too while they differ.
  struct RoundOwners {
    std::vector<std::string> read, write, all;  // all: read then write, no repeats
    std::vector<QuorumGroup> groups;
    uint64_t read_fp = 0, write_fp = 0;
  };
  RoundOwners OwnersOf(const std::string& key) const;
  // The acceptor rule: whether a round naming these owners has this node's own read-ring
  // and write-ring lists for the key.
  bool CountsMe(const std::string& key, uint64_t read_owners, uint64_t write_owners) const;
  using OpIt = std::map<uint64_t, PendingConsistent>::iterator;

  void Coordinate(Origin origin, const std::string& key, StrongOp op, int64_t now_ms);
  // `node` is in the key's read-ring or write-ring list in this node's view (whose
  // promises and accepts count).
  bool IsOwnerNode(const std::string& key, const std::string& node) const;
  void StartRound(OpIt it, int64_t now_ms);
  void SendAccept(OpIt it, int64_t now_ms);
  void OnRoundFailed(OpIt it, int64_t now_ms);
  void OnChosen(OpIt it, int64_t now_ms);
  void RecordWrite(const PendingConsistent& p);
  // Answers the operation, forgets it and starts the next one queued for its key.
  void Finish(OpIt it, const Status& status, bool applied, const Object& object, int64_t now_ms);
  // Fails with kTimeout if a write's new version may have been accepted, else kUnavailable.
  void Fail(OpIt it, const std::string& why, int64_t now_ms);
  void Reply(const Origin& origin, const Status& status, bool applied, const Object& object);
  // The round req_id belongs to, if it is still running.
  std::optional<OpIt> RoundOf(uint64_t req_id);
  void EndRound(PendingConsistent& p);

  ReplicaContext& ctx_;
  Forwarder& forwarder_;
  std::map<uint64_t, PendingConsistent> ops_;         // by operation id
  std::map<uint64_t, uint64_t> rounds_;               // round req id -> operation id
  std::map<std::string, std::deque<uint64_t>> key_queue_;  // key -> operations, running first
  ConsistentStats stats_;
};

}  // namespace itsuka::core
