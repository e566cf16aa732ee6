// Deterministic simulation of CONSISTENT operations (core/paxos.h) over the production
// core::Node (one static view of every node): a register workload per key (reads, blind writes, NX writes, deletes and
// compare-and-set by context), issued through random nodes while messages are dropped,
// delayed and reordered, the network partitions and nodes crash and restart (losing
// whatever they had staged but not committed, and every request in flight).
//
// Checks, per seed:
//   - the CONSISTENT history of every key is linearizable (linearizability.h) against
//     a register model whose state is (value, number of applied writes);
//     `-UNAVAILABLE` ops must not have taken effect, `-TIMEOUT` and lost ones may or
//     may not have;
//   - no dot ever names two different values in anything a reader or a replica holds
//     (the dotted-version-vector rule, with strong writes' dots from a shared actor);
//   - the documented eventual-write guarantee: a CONSISTENT read started after an
//     eventual write was acknowledged with PW=2 (N=3) sees it (its clock covers its dot).
// Each seed runs twice and must produce the same trace. ITSUKA_SIM_SEED=N replays one
// seed; ITSUKA_SIM_SEEDS=K sets how many run.
#include <gtest/gtest.h>

#include "checkers.h"
#include "seeds.h"
#include "workloads.h"

namespace itsuka::core::sim {
namespace {

using simcheck::Linearizable;

struct Totals {
  RegisterCounts reg;
  int eventual_checked = 0;
};

ClusterOptions RegisterOptions() {
  ClusterOptions o;
  o.node.n = 3;
  o.node.request_timeout_ms = 600;
  o.node.record_writes = true;
  o.request_ids_per_boot = true;
  o.network.max_delay_ms = 40;
  o.network.long_delay_one_in = 10;  // an occasional long delay: reordering
  o.network.long_delay_ms = 150;
  return o;
}

// with_eventual: eventual PW=2 writes join the load. The register model does not apply
// to them (they are not in the CONSISTENT history); that run checks the eventual-write
// guarantee instead of linearizability.
SeedOutcome RunSeed(uint64_t seed, bool with_eventual, Totals* totals) {
  Cluster c(seed, RegisterOptions(), 3 + static_cast<int>(seed % 3));
  RegisterClient reg(&c, /*smart_clients=*/true);
  EventualClient eventual(&c);
  DotsNameOneValue dots(&c);
  const std::vector<std::string> keys = {"k0", "k1", "k2"};
  RegisterFaults(c, reg, with_eventual ? &eventual : nullptr, keys);
  c.Heal();
  c.set_drop(0);
  c.Run(3000);

  SeedOutcome out;
  int eventual_checked = 0;
  out.failure = dots.Check(c, reg);
  if (out.failure.empty()) out.failure = ConsistentReadsSeeEventualWrites(reg, eventual, &eventual_checked);
  if (!out.failure.empty()) return out;
  const RegisterCounts counts = CountRegisterOps(reg);
  int checked_ok = 0;
  if (!with_eventual) out.failure = RegistersLinearizable(reg, keys, &checked_ok);
  if (!out.failure.empty()) return out;
  if (totals) {
    totals->reg.ok += counts.ok;
    totals->reg.ok_reads += counts.ok_reads;
    totals->reg.ok_writes += counts.ok_writes;
    totals->reg.unknown += counts.unknown;
    totals->reg.unavailable += counts.unavailable;
    totals->eventual_checked += eventual_checked;
  }
  out.digest = Hash64(c.trace());
  return out;
}

void RunAll(bool with_eventual) {
  const std::vector<uint64_t> seeds = Seeds(200);
  Totals t;
  RunSeedsTwice(seeds, [&](uint64_t seed, bool count) {
    return RunSeed(seed, with_eventual, count ? &t : nullptr);
  });
  if (::testing::Test::HasFatalFailure()) return;
  // The workload must get operations through, or linearizability proves nothing.
  EXPECT_GT(t.reg.ok_reads, static_cast<int>(seeds.size()) * 5);
  EXPECT_GT(t.reg.ok_writes, static_cast<int>(seeds.size()) * 3);
  if (with_eventual && seeds.size() > 10) EXPECT_GT(t.eventual_checked, 0);
  std::printf(
      "simulated %zu seeds: %d CONSISTENT ops ok (%d reads, %d writes), %d unknown, "
      "%d unavailable, %d eventual-write observations checked\n",
      seeds.size(), t.reg.ok, t.reg.ok_reads, t.reg.ok_writes, t.reg.unknown, t.reg.unavailable,
      t.eventual_checked);
}

TEST(ConsistentSimulation, RegisterIsLinearizableUnderFaults) { RunAll(false); }

TEST(ConsistentSimulation, SeesEventualWritesAckedByTwoPrimaries) { RunAll(true); }

// A model check of the checker itself: a stale read after a completed write is not
// linearizable, a read of a concurrent write is.
TEST(ConsistentSimulation, CheckerRejectsStaleRead) {
  Op w{Op::kWrite, "k", "a"};
  w.invoke = 0;
  w.complete = 10;
  w.ok = true;
  w.done = true;
  Op r{Op::kRead, "k"};
  r.invoke = 20;
  r.complete = 30;
  r.ok = true;
  r.done = true;  // read nil after the write
  std::string why;
  EXPECT_FALSE(Linearizable({&w, &r}, &why));
  r.read_value = "a";
  r.read_count = 1;
  EXPECT_TRUE(Linearizable({&w, &r}, &why));
  r.invoke = 5;  // concurrent: nil is fine too
  r.read_value.reset();
  r.read_count = 0;
  EXPECT_TRUE(Linearizable({&w, &r}, &why));
}

}  // namespace
}  // namespace itsuka::core::sim
