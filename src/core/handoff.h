// The handoff room of a node: hint creation, hint replay, replay acks and expiry
// (core/hints.h has the design note and the data types; NodeCore composes this room).
//
//  - Inputs: SetStore (enables hints and, with HandoffOptions::sloppy_quorum, sloppy
//    writes), AddHint from the write room (a substitute's hint, or the coordinator's own
//    for a primary left without one), Replay (the shell's periodic call), OnAck (a
//    target's ReplicaWriteAck to a replayed hint, routed here by the request-id
//    registry), Tick (this room's timeout rule: a replay unanswered by its deadline
//    counts as failed and may be sent again).
//  - Pacing per target: up to max_inflight_per_target replays await an ack at once,
//    within the node-wide rate. A replay that times out says the target is not really
//    reachable (the failure detector lags behind a partition, or the connection is
//    still stuck): the target is then sent one replay at a time (a probe) until it
//    answers anything, so an unreachable target costs one failed replay per timeout,
//    not a full window of them, and gets its full window back the moment it answers.
//  - Effects: ReplicaWrites of hints to their targets (ids opened as Room::kHandoff),
//    hints staged in and removed from the HintStore.
//  - ReadWithHints is the replica read side's view: the local copy merged with every
//    unexpired hint kept for the key, so a substitute shows what it holds for a primary.
//
// No clocks (wall time comes in through Replay), no I/O. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "core/hints.h"
#include "core/replica_context.h"

namespace itsuka::core {

class Handoff {
 public:
  explicit Handoff(ReplicaContext& ctx) : ctx_(ctx) {}

  // `hints` is not owned and must outlive this room; nullptr disables hints.
  void SetStore(HintStore* hints, HandoffOptions options);
  bool enabled() const { return hints_ != nullptr; }
  // Writes go to substitutes for unreachable primaries (a HintStore is set and
  // HandoffOptions::sloppy_quorum).
  bool Sloppy() const { return hints_ != nullptr && options_.sloppy_quorum; }

  // Stores `obj` as a hint for `target` here, counting it; an error if refused.
  Status AddHint(const std::string& target, const std::string& key, const Object& obj);
  // The key's object merged with the unexpired hints this node keeps for it.
  Result<Object> ReadWithHints(const std::string& key);

  // Replays hints to reachable member targets (rate-limited) and drops hints older
  // than max_hint_age_ms. `wall_ms`: the wall clock hints are stamped with.
  void Replay(int64_t now_ms, int64_t wall_ms);
  // A target's ack of the replay `req_id` (owned by this room).
  void OnAck(uint64_t req_id, const std::string& from, const ReplicaWriteAck& m);
  void Tick(int64_t now_ms);

  const HandoffStats& stats() const { return stats_; }
  size_t in_flight() const { return replays_.size(); }

 private:
  struct PendingReplay {
    std::string target;
    std::string key;
    Object sent;
    int64_t deadline_ms;
  };
  // One bounded expiry sweep step per target per second.
  static constexpr size_t kExpireBatch = 256;
  bool HintExpired(const Hint& h) const;
  void ExpireHints(const std::string& target, int64_t now_ms);
  // Sends up to the rate limiter's grant of `target`'s hints; false once the limiter
  // has nothing left for anyone this call.
  bool ReplayTo(const std::string& target, int64_t now_ms, int64_t wall_ms);
  void Forget(std::map<uint64_t, PendingReplay>::iterator it);

  ReplicaContext& ctx_;
  HintStore* hints_ = nullptr;
  HandoffOptions options_;
  HandoffStats stats_;
  RateLimiter limiter_{0};
  std::map<uint64_t, PendingReplay> replays_;                // by request id
  std::set<std::pair<std::string, std::string>> replaying_;  // (target, key) in replays_
  std::map<std::string, std::string> replay_cursor_;         // per target: next key to scan
  std::set<std::string> probing_;  // targets whose last replay timed out: one at a time
  int64_t wall_ms_ = 0;  // wall clock as of the last Replay (hints are stamped with it)
  std::map<std::string, std::string> expire_cursor_;
  std::map<std::string, int64_t> expire_next_ms_;
};

}  // namespace itsuka::core
