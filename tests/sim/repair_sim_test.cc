// Deterministic simulation of anti-entropy over the production core::Node (its NodeCore,
// RepairDriver and replica side; n0's driver answers its own requests in the node):
// nodes take blind writes and deletes (W=1) through random nodes while messages are
// dropped, nodes crash and partitions come and go, so their replicas drift (workloads.h, DriftingReplicas). Then, with no read at all (no read
// repair), n0 runs a repair of every partition over a network that still drops
// messages, twice. Checked:
//   - after the first run every replica of every key holds exactly the merge of what
//     all replicas held before it (repair alone converges them, nothing is lost);
//   - after the second run (tombstone grace 0) keys whose merge is tombstones only are
//     gone from every replica, and every other key is still the merge;
//   - the same seed gives the same trace (the first three seeds, or a replayed one).
// ITSUKA_REPAIR_SIM_SEEDS=K sets how many seeds run (default 40); ITSUKA_SIM_SEED=N
// replays one.
#include <gtest/gtest.h>

#include "checkers.h"
#include "seeds.h"
#include "workloads.h"

namespace itsuka::core::sim {
namespace {

RepairOptions CoordinatorOptions() {
  RepairOptions ro;
  ro.n = 3;
  ro.request_timeout_ms = 500;
  ro.max_attempts = 50;
  ro.tombstone_grace_ms = 0;
  ro.keys_per_fetch = 5;
  return ro;
}

ClusterOptions RepairSimOptions() {
  ClusterOptions o;
  o.node.n = 3;
  o.node.request_timeout_ms = 1000;
  o.start_ms = 1;
  o.network.max_delay_ms = 20;
  o.network.drop = 0.05;
  o.merkle = true;
  o.repair = CoordinatorOptions();  // every node's driver; n0's coordinates the runs
  return o;
}

std::string RunSeed(uint64_t seed) {
  Cluster c(seed, RepairSimOptions(), 4);
  DriftingReplicas(c);
  const std::map<std::string, Object> expected = MergeOfAllKeys(c);
  const RepairTotals first = RepairEverything(c, "n0", /*drop=*/0.02);
  EXPECT_EQ(first.partitions_failed, 0u) << "seed " << seed;
  size_t tombstoned = 0;
  const std::string failure = RepairConverged(c, expected, &tombstoned);
  EXPECT_EQ(failure, "") << "seed " << seed;
  EXPECT_GT(first.keys_moved, 0u) << "seed " << seed << ": the workload left nothing to repair";
  EXPECT_EQ(first.tombstones_purged, tombstoned) << "seed " << seed;
  // A second run over converged replicas finds nothing.
  const RepairTotals second = RepairEverything(c, "n0", /*drop=*/0.02);
  EXPECT_EQ(second.keys_differing, 0u) << "seed " << seed;
  EXPECT_EQ(second.keys_moved, 0u) << "seed " << seed;
  return c.trace();
}

TEST(RepairSim, RepairAloneConvergesReplicasAndPurgesOnlyCommonTombstones) {
  const std::vector<uint64_t> seeds = Seeds(40, 1, "ITSUKA_REPAIR_SIM_SEEDS");
  for (uint64_t seed : seeds) {
    const std::string a = RunSeed(seed);
    if (seed <= 3 || seeds.size() == 1) {
      EXPECT_EQ(a, RunSeed(seed)) << "seed " << seed << " is not deterministic";
    }
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace itsuka::core::sim
