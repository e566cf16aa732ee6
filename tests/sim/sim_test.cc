// Deterministic whole-cluster simulation of the production core::Node (tests/sim:
// sim_cluster.h, workloads.h, checkers.h) over one static view of every node.
//
// Several nodes run in one process over a virtual network (random delay, reordering,
// drops, partitions) and a virtual clock; nodes crash (losing what they had staged but
// not committed, and every request in flight) and restart. Clients write unique values
// (blind, or with the context of an earlier read) and read, through random nodes.
// After the faults heal and read repair has run, the invariants are checked:
//   - every acknowledged write is present, or causally superseded by a write whose
//     context saw it (no lost update);
//   - no sibling is lost: a write missing from the final object was seen by another
//     write's context;
//   - the replicas of every key hold identical objects (convergence).
// Each seed runs twice and must produce the same trace (no hidden nondeterminism).
// ITSUKA_SIM_SEED=N replays one seed; ITSUKA_SIM_SEEDS=K sets how many run.
#include <gtest/gtest.h>

#include "checkers.h"
#include "seeds.h"
#include "workloads.h"

namespace itsuka::core::sim {
namespace {

struct Totals {
  int acked = 0, deletes = 0, everywhere = 0;
  uint64_t written = 0, replayed = 0, refused = 0;
};

ClusterOptions EventualOptions(bool hints) {
  ClusterOptions o;
  o.node.n = 3;
  o.node.request_timeout_ms = 1000;
  o.node.record_writes = true;
  o.network.max_delay_ms = 40;
  o.hints = hints;
  o.handoff.rate_keys_per_s = 200;
  o.handoff.max_inflight_per_target = 4;
  o.handoff.max_hint_age_ms = 60000;
  return o;
}

// hints: sloppy quorum and hinted handoff on, over more keys than a target may keep
// hints for (so refusals happen too); the hints must all be handed off after the heal.
SeedOutcome RunSeed(uint64_t seed, bool hints, Totals* totals) {
  Cluster c(seed, EventualOptions(hints), 3 + static_cast<int>(seed % 3));
  EventualClient client(&c);
  std::vector<std::string> keys = {"k0", "k1", "k2", "k3"};
  for (int i = 4; hints && i < 12; ++i) keys.push_back("k" + std::to_string(i));
  EventualFaults(c, client, keys);
  c.Heal();
  c.set_drop(0);
  c.Run(5000);
  SeedOutcome out;
  // Before any read repair (without anti-entropy nothing else carries them).
  if (totals) totals->everywhere += AckedOnEveryReplica(c, client, "n0");
  if (hints) {
    if (totals) {
      totals->written += c.handoff_totals().written;
      totals->replayed += c.handoff_totals().replayed;
      totals->refused += c.handoff_totals().refused;
    }
    out.failure = HintsHandedOff(c);
    if (!out.failure.empty()) return out;
  }
  ReadRepairAll(c, client, keys, 4, 3000);
  if (totals) {
    totals->acked += client.ok_puts();
    totals->deletes += client.ok_deletes();
  }
  for (const std::string& f : {Converged(c, "n0", keys), NoSiblingLost(c, client, keys),
                               NoAckedWriteLost(c, client)}) {
    if (!f.empty()) {
      out.failure = f;
      return out;
    }
  }
  out.digest = Hash64(c.trace());
  return out;
}

Totals RunAll(bool hints, const std::vector<uint64_t>& seeds) {
  Totals t;
  RunSeedsTwice(seeds, [&](uint64_t seed, bool count) { return RunSeed(seed, hints, count ? &t : nullptr); });
  return t;
}

TEST(Simulation, InvariantsHoldUnderFaults) {
  const std::vector<uint64_t> seeds = Seeds(300);
  const Totals t = RunAll(false, seeds);
  if (HasFatalFailure()) return;
  // The workload must actually acknowledge writes, or the invariants prove nothing.
  EXPECT_GT(t.acked, static_cast<int>(seeds.size()) * 10);
  std::printf("simulated %zu seeds, %d acknowledged writes checked, %d deletes; %d on every "
              "replica before read repair\n", seeds.size(), t.acked, t.deletes, t.everywhere);
}

// ---- Sloppy quorum and hinted handoff ------------------------------------------------
// The same workload and invariants with hints on (3 to 5 nodes, so both substitutes and
// coordinator-kept hints occur), plus: every hint is handed off after the heal.
TEST(Simulation, HintedHandoffInvariantsHoldUnderFaults) {
  const std::vector<uint64_t> seeds = Seeds(300);
  const Totals t = RunAll(true, seeds);
  if (HasFatalFailure()) return;
  EXPECT_GT(t.acked, static_cast<int>(seeds.size()) * 10);
  // Hints must actually be written and handed off, or the run proves nothing about them.
  if (seeds.size() >= 20) {
    EXPECT_GT(t.written, seeds.size());
    EXPECT_GT(t.replayed, seeds.size() / 2);
  }
  std::printf("simulated %zu seeds with hints: %d acknowledged writes checked, %d on every "
              "replica before read repair; %llu hints written, %llu replayed, %llu refused "
              "(target full)\n",
              seeds.size(), t.acked, t.everywhere, static_cast<unsigned long long>(t.written),
              static_cast<unsigned long long>(t.replayed), static_cast<unsigned long long>(t.refused));
}

}  // namespace
}  // namespace itsuka::core::sim
