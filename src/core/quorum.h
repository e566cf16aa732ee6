// Coordinators for replicated reads and writes, as pure state machines.
//
// Design note (Dynamo §4.5, Riak's get/put FSMs): any node coordinates a request for
// the N replicas of a key. A write succeeds once W replicas acknowledged it (PW of them
// primaries, not sloppy substitutes); a read replies once R replicas answered (PR of them
// primaries) with the merge of what they returned, and afterwards repairs replicas whose
// copy the merge supersedes. The coordinator never blocks and never reads a clock: the
// shell feeds it replies and the current time and carries out what it returns.
//
// Outcomes distinguish what a client must tell apart:
//   kOk           the quorum was met;
//   kUnavailable  too few replicas reachable to try — nothing was sent, nothing applied;
//   kTimeout      requests were sent but too few acks came back in time — the write may
//                 or may not have been applied (outcome unknown).
// Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/object.h"
#include "itsuka/status.h"

namespace itsuka::core {

// "one" | "quorum" | "all" | a number in [1, n].
Result<int> ParseQuorum(std::string_view text, int n);

// One replica a request goes to.
struct Target {
  std::string node;
  bool primary = true;     // in the key's preference list (false: a sloppy substitute)
  std::string hint_for;    // for a substitute: the primary it stands in for
};

// Picks where a request goes: the reachable primaries, plus (with sloppy quorum) the
// first reachable non-primary nodes of `fallbacks` standing in for unreachable ones.
std::vector<Target> PickTargets(const std::vector<std::string>& primaries,
                                const std::vector<std::string>& fallbacks,
                                const std::vector<bool>& primary_up,
                                const std::vector<bool>& fallback_up, bool sloppy);

enum class Outcome { kPending, kOk, kUnavailable, kTimeout };

class PutCoordinator {
 public:
  // REQUIRES: 1 <= w, 0 <= pw <= w.
  PutCoordinator(std::vector<Target> targets, int w, int pw, int64_t deadline_ms);

  // Before sending: kUnavailable (with a message) if the targets cannot meet W/PW.
  Outcome Check();
  const std::vector<Target>& targets() const { return targets_; }
  // A replica's answer. Duplicate or unknown answers are ignored.
  Outcome OnAck(const std::string& node, bool ok);
  Outcome OnTime(int64_t now_ms);

  Outcome outcome() const { return outcome_; }
  // The client-facing status for a finished request.
  Status ToStatus() const;
  int acks() const { return acks_; }

 private:
  Outcome Evaluate();

  std::vector<Target> targets_;
  std::vector<int> state_;  // per target: 0 waiting, 1 acked, -1 failed
  int w_, pw_;
  int64_t deadline_ms_;
  int acks_ = 0, primary_acks_ = 0;
  Outcome outcome_ = Outcome::kPending;
  std::string why_;
};

class GetCoordinator {
 public:
  GetCoordinator(std::vector<Target> targets, int r, int pr, int64_t deadline_ms);

  Outcome Check();
  const std::vector<Target>& targets() const { return targets_; }
  // A replica's object (empty if it has none), or failure (ok = false).
  Outcome OnReply(const std::string& node, bool ok, const Object& obj);
  Outcome OnTime(int64_t now_ms);

  Outcome outcome() const { return outcome_; }
  Status ToStatus() const;
  // The merge of every reply so far.
  const Object& merged() const { return merged_; }
  // True once every target replied or the deadline passed: repairs can be computed.
  bool done() const;
  // Replicas whose reply the merge supersedes (or that had nothing): they should be
  // sent merged(). Only meaningful once done().
  std::vector<std::string> StaleReplicas() const;

 private:
  Outcome Evaluate();

  std::vector<Target> targets_;
  std::vector<int> state_;
  std::vector<Object> replies_;
  int r_, pr_;
  int64_t deadline_ms_;
  bool timed_out_ = false;
  int replies_ok_ = 0, primary_replies_ = 0;
  Object merged_;
  Outcome outcome_ = Outcome::kPending;
  std::string why_;
};

}  // namespace itsuka::core
