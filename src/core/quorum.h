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

// Counts answers from a request's targets against a quorum (`need` answers, of which
// `need_primaries` from primaries). Shared by the read and write coordinators.
class QuorumTracker {
 public:
  QuorumTracker(std::vector<Target> targets, int need, int need_primaries);

  // Before sending: false (and why()) if the targets cannot meet the quorum.
  bool Reachable();
  // Records a target's answer; returns its index, or -1 for a duplicate or unknown node.
  int Record(const std::string& node, bool ok);
  bool Met() const { return got_ >= need_ && got_primaries_ >= need_primaries_; }
  // False once too many targets failed for the quorum to be met.
  bool StillPossible() const;
  bool AllAnswered() const;
  // "<got> of <need> <noun>"
  std::string Progress(const char* noun) const;

  const std::vector<Target>& targets() const { return targets_; }
  int state(size_t i) const { return state_[i]; }  // 0 waiting, 1 ok, -1 failed
  int got() const { return got_; }
  int need() const { return need_; }
  const std::string& why() const { return why_; }

 private:
  std::vector<Target> targets_;
  std::vector<int> state_;
  int need_, need_primaries_;
  int got_ = 0, got_primaries_ = 0;
  std::string why_;
};

// The client-facing status of a finished request (kPending: kBusy).
Status OutcomeStatus(Outcome outcome, const std::string& why);

class PutCoordinator {
 public:
  // REQUIRES: 1 <= w, 0 <= pw <= w.
  PutCoordinator(std::vector<Target> targets, int w, int pw, int64_t deadline_ms);

  // Before sending: kUnavailable (with a message) if the targets cannot meet W/PW.
  Outcome Check();
  const std::vector<Target>& targets() const { return quorum_.targets(); }
  // A replica's answer. Duplicate or unknown answers are ignored.
  Outcome OnAck(const std::string& node, bool ok);
  Outcome OnTime(int64_t now_ms);

  Outcome outcome() const { return outcome_; }
  Status ToStatus() const { return OutcomeStatus(outcome_, why_); }
  int acks() const { return quorum_.got(); }
  int need() const { return quorum_.need(); }

 private:
  QuorumTracker quorum_;
  int64_t deadline_ms_;
  Outcome outcome_ = Outcome::kPending;
  std::string why_;
};

class GetCoordinator {
 public:
  GetCoordinator(std::vector<Target> targets, int r, int pr, int64_t deadline_ms);

  Outcome Check();
  const std::vector<Target>& targets() const { return quorum_.targets(); }
  // A replica's object (empty if it has none), or failure (ok = false). A failed
  // reply may still carry an object (a replica that cannot vouch for its copy): it is
  // merged, but counts toward neither R nor PR.
  Outcome OnReply(const std::string& node, bool ok, const Object& obj);
  Outcome OnTime(int64_t now_ms);

  Outcome outcome() const { return outcome_; }
  Status ToStatus() const { return OutcomeStatus(outcome_, why_); }
  // The merge of every reply so far.
  const Object& merged() const { return merged_; }
  // The object `node` answered with and which counted (ok), or nullptr. Stable for
  // the coordinator's life (it may be passed back to OnReply for another node).
  const Object* ReplyOf(const std::string& node) const;
  // True once every target replied or the deadline passed: repairs can be computed.
  bool done() const { return timed_out_ || quorum_.AllAnswered(); }
  // Replicas whose reply the merge supersedes (or that had nothing): they should be
  // sent merged(). Only meaningful once done().
  std::vector<std::string> StaleReplicas() const;

 private:
  QuorumTracker quorum_;
  std::vector<Object> replies_;
  int64_t deadline_ms_;
  bool timed_out_ = false;
  Object merged_;
  Outcome outcome_ = Outcome::kPending;
  std::string why_;
};

}  // namespace itsuka::core
