// Which seeds a simulation test runs, and the run-each-seed-twice determinism check.
// ITSUKA_SIM_SEED=N replays seed N alone (in any simulation test); otherwise seeds
// first .. first + count - 1 run, count being the test's default or the value of its
// count variable (ITSUKA_SIM_SEEDS for most). ITSUKA_SIM_SEED_PERCENT=P scales the
// default counts (not an explicit count variable) to P% (at least one seed): the
// sanitizer build, some 30x slower, runs a quarter of the seeds (tools/test), since its
// job is memory and undefined-behaviour errors, and the release build runs them all.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "common/hash.h"

namespace itsuka::core::sim {

inline std::vector<uint64_t> Seeds(int default_count, uint64_t first = 1,
                                   const char* count_var = "ITSUKA_SIM_SEEDS") {
  std::vector<uint64_t> seeds;
  if (const char* one = std::getenv("ITSUKA_SIM_SEED")) {
    seeds.push_back(std::strtoull(one, nullptr, 10));
    return seeds;
  }
  int count = default_count;
  if (const char* n = std::getenv(count_var)) {
    count = std::atoi(n);
  } else if (const char* p = std::getenv("ITSUKA_SIM_SEED_PERCENT")) {
    count = std::max(1, default_count * std::atoi(p) / 100);
  }
  for (int i = 0; i < count; ++i) seeds.push_back(first + static_cast<uint64_t>(i));
  return seeds;
}

// What one seed's run found: a failure (empty: every invariant held) and a digest of
// its trace.
struct SeedOutcome {
  std::string failure;
  uint64_t digest = 0;
};

// Runs every seed, asserting that its invariants held and that a second run of it gave
// the same trace; `run` returns the outcome and adds the seed's figures to the test's
// totals when `count` is true (the first run). Callers return on HasFatalFailure().
inline void RunSeedsTwice(const std::vector<uint64_t>& seeds,
                          const std::function<SeedOutcome(uint64_t seed, bool count)>& run) {
  for (uint64_t seed : seeds) {
    const SeedOutcome a = run(seed, true);
    ASSERT_EQ(a.failure, "") << "seed " << seed << " (replay: ITSUKA_SIM_SEED=" << seed << ")";
    const SeedOutcome b = run(seed, false);
    ASSERT_EQ(a.digest, b.digest) << "seed " << seed << " is nondeterministic";
  }
}

}  // namespace itsuka::core::sim
