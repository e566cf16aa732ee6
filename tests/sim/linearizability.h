// The per-key linearizability check of the CONSISTENT simulations (consistent_sim_test,
// membership_sim_test): a history of register operations and a Wing & Gong search with
// memoization (as in Lowe's and Porcupine's checkers) against a register whose state is
// (value, number of applied writes). `-UNAVAILABLE` ops must not have taken effect,
// `-TIMEOUT` and lost ones may or may not have.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace itsuka::core::simcheck {

// One operation of the history.
struct Op {
  enum Kind { kRead, kWrite, kNx, kDel, kCas } kind;
  std::string key;
  std::string value;   // writes
  uint64_t token = 0;  // kCas: the write count the context was read at
  int64_t invoke = 0;
  int64_t complete = INT64_MAX;  // INT64_MAX: outcome unknown
  bool done = false;
  bool ok = false;                        // completed with OK
  bool failed = false;                    // completed with UNAVAILABLE (must not have taken effect)
  bool applied = false;                   // writes: condition held
  std::optional<std::string> read_value;  // reads: nil or the value
  uint64_t read_count = 0;                // reads: ~strong counter of the object
  bool read_siblings = false;             // reads: more than one live value (a violation)
};

struct RegState {
  std::optional<std::string> value;
  uint64_t writes = 0;  // applied writes so far (the ~strong counter)
  bool operator==(const RegState&) const = default;
};

// Applies `op` to `s` if it is consistent with the op's observed result.
inline bool Step(const Op& op, RegState* s) {
  const bool known = op.ok;
  switch (op.kind) {
    case Op::kRead:
      return !op.read_siblings && op.read_value == s->value && op.read_count == s->writes;
    case Op::kWrite:
      s->value = op.value;
      ++s->writes;
      return true;
    case Op::kNx: {
      const bool holds = !s->value.has_value();
      if (known && op.applied != holds) return false;
      if (holds) {
        s->value = op.value;
        ++s->writes;
      }
      return true;
    }
    case Op::kDel: {
      const bool holds = s->value.has_value();
      if (known && op.applied != holds) return false;
      if (holds) {
        s->value.reset();
        ++s->writes;
      }
      return true;
    }
    case Op::kCas: {
      const bool holds = op.token == s->writes;
      if (known && op.applied != holds) return false;
      if (holds) {
        s->value = op.value;
        ++s->writes;
      }
      return true;
    }
  }
  return false;
}

// Wing & Gong search with a visited set over (linearized set, state). Ops that failed
// (UNAVAILABLE) are checked separately: they never take effect, so they are left out
// (if one had taken effect a read would show a value no remaining op wrote).
inline bool Linearizable(const std::vector<const Op*>& ops, std::string* why) {
  const size_t n = ops.size();
  if (n > 63) {
    *why = "too many ops for the checker";
    return false;
  }
  uint64_t must = 0;  // ops that completed OK must all be linearized
  for (size_t i = 0; i < n; ++i) {
    if (ops[i]->ok) must |= uint64_t{1} << i;
  }
  std::set<std::pair<uint64_t, std::pair<std::optional<std::string>, uint64_t>>> seen;
  std::function<bool(uint64_t, const RegState&)> dfs = [&](uint64_t done, const RegState& s) {
    if ((done & must) == must) return true;
    if (!seen.insert({done, {s.value, s.writes}}).second) return false;
    // Earliest completion among pending ops: nothing invoked after it may go first.
    int64_t horizon = INT64_MAX;
    for (size_t i = 0; i < n; ++i) {
      if (!(done >> i & 1)) horizon = std::min(horizon, ops[i]->complete);
    }
    for (size_t i = 0; i < n; ++i) {
      if ((done >> i & 1) || ops[i]->invoke > horizon) continue;
      RegState next = s;
      if (Step(*ops[i], &next) && dfs(done | (uint64_t{1} << i), next)) return true;
    }
    return false;
  };
  if (dfs(0, RegState{})) return true;
  *why = "no linearization of " + std::to_string(n) + " ops";
  return false;
}

inline std::string Describe(const Op& op) {
  static const char* kNames[] = {"read", "write", "nx", "del", "cas"};
  std::string s = std::string(kNames[op.kind]) + " [" + std::to_string(op.invoke) + ", " +
                  (op.complete == INT64_MAX ? std::string("?") : std::to_string(op.complete)) +
                  "] ";
  if (op.kind == Op::kRead) {
    s += op.read_value ? *op.read_value : "nil";
    s += " #" + std::to_string(op.read_count);
  } else {
    s += op.value + (op.kind == Op::kCas ? " token " + std::to_string(op.token) : "");
    s += op.ok ? (op.applied ? " applied" : " not-applied") : " unknown";
  }
  return s;
}

}  // namespace itsuka::core::simcheck
