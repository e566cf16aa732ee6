// Deterministic simulation of membership churn: every node the production core::Node
// over a virtual network and clock, with nodes joining (knowing one seed only),
// being decommissioned, crashing and restarting, while clients write (workloads.h,
// MembershipChurn).
//
// Every node gossips each 100 ms (push-pull with a random peer), rebuilds its read and
// write rings from its view after every change, and publishes `synced` once its
// NodeCore transferred the partitions it gains -- what the daemon does. Crashed nodes lose what was staged but not committed; a restarted node
// keeps its durable objects and its persisted view (a new incarnation). Checked at the end:
//   - membership converged: every live node has the same statuses, nobody is joining
//     or leaving, and the departed are left;
//   - no acknowledged write is lost: each is held by one of its key's final replicas
//     (the nodes that left and their data are gone), before any repair;
//   - after read repair, the final replicas of every key hold identical objects;
//   - with CONSISTENT operations in the load (ConsistentOperationsStayLinearizableAcrossMoves):
//     every key's CONSISTENT history is linearizable (linearizability.h), a read after
//     the last change included.
//     ITSUKA_SIM_SEED=1319 (beyond the default seeds) once read a stale value: a node
//     dropped from a partition by a completed join still listed itself there in its
//     stale read ring, so when a decommission gave the partition back it transferred
//     nothing and reported synced, missing the writes made since. NodeCore now plans
//     against the partitions of the last ring it synced to, not its read ring.
//     ITSUKA_SIM_SEED=1221 lost an acknowledged CONSISTENT write with joint rounds
//     during moves: a join completed at two nodes was undone by a decommission of the
//     joiner issued where it was still joining, which made it left at once. Such a
//     decommission now makes it leaving (core/gossip.h Gossiper::Leave), so its data and
//     acceptor state are copied back first (docs/DESIGN.md 4.3, 5.6 open point 3).
//     ITSUKA_SIM_SEED=1388 (beyond the default seeds) failed only in the workload: its
//     decommission went through a node that had just restarted, which (since a gated
//     node makes no membership change) refused it, and the checker still expected the
//     target left. The churn now retries through another member, as an operator would.
// Faults: crashes (of any member, the joining one included) in the middle of a
// transfer, a decommissioned node dying for good, partitions during a join, a
// decommission while a join is still moving partitions, message loss.
// Each seed runs twice and must produce the same trace. ITSUKA_SIM_SEED=N replays one;
// with ITSUKA_SIM_TRACE=1 a lost write prints the trace, and ITSUKA_SIM_DEBUG_KEY=k
// prints every node's rings for key k as they change.
//
// Every test here runs every node as the production core::Node (core/node.h: its own
// view application and gossip filter, transfers allowed once every member knows the new
// ring, `synced` published once committed) at the daemon's core tick. GlueBugIsCaught's
// seeds are three of those in 1001-1400 whose run catches the broken glue at that
// cadence (which seeds catch it depends on the cadence, on the load and on the message
// timing: before the fence it was 1090, 1096, 1105; with the fence alone 1150, 1174,
// 1221; with fence and gate 1030, 1238, 1300, 1305; with joint rounds during moves
// alone 1051, 1291, 1347; with all of them 1079, 1121, 1138, 1143, 1152, 1349, 1356,
// 1374, 1383; and since a decommission of a joiner goes through leaving, 22 seeds,
// among them 1013, 1079, 1224).
// GlueBugIsCaught: the checkers' self-test. With core::Node's glue broken on purpose
// (NodeConfig::unsafe_synced_before_transfer) they must report a lost acknowledged
// write or a stale CONSISTENT read for at least one of a fixed set of seeds.
#include <cstdio>
#include <cstdlib>
#include <functional>

#include <gtest/gtest.h>

#include "checkers.h"
#include "core/node.h"
#include "seeds.h"
#include "workloads.h"

namespace itsuka::core::sim {
namespace {

struct Totals {
  int acked = 0, changes = 0, register_ok = 0;
  uint64_t joint_rounds = 0;  // CONSISTENT rounds over old and new owners (a move in flight)
};

ClusterOptions ChurnOptions(bool broken_glue = false) {
  ClusterOptions o;
  o.node.n = 3;
  o.node.request_timeout_ms = 1000;
  o.network.max_delay_ms = 20;
  o.gossip = true;
  o.unsafe_synced_before_transfer = broken_glue;
  return o;
}

// with_register: CONSISTENT reads and writes of keys s0..s2 join the load, a CONSISTENT
// read of each follows the last change, and each key's history must be linearizable.
SeedOutcome RunSeed(uint64_t seed, bool with_register, Totals* totals,
                    const ClusterOptions& options) {
  Cluster c(seed, options);
  EventualClient client(&c);
  RegisterClient reg(&c, /*smart_clients=*/false);
  const ChurnOutcome churn = MembershipChurn(c, client, with_register ? &reg : nullptr);
  SeedOutcome out;
  if (!churn.failure.empty()) {
    out.failure = churn.failure;
    return out;
  }
  out.failure = MembershipConverged(c, churn.left);
  if (out.failure.empty()) out.failure = AckedWritesOnFinalReplicas(c, client, churn.left);
  if (!out.failure.empty()) return out;
  // Convergence after read repair.
  const std::vector<std::string> live = c.LiveMembers();
  auto& rng = c.rng();
  std::set<std::string> acked_keys;  // in key order
  for (const Ack& a : client.acked()) acked_keys.insert(a.key);
  for (int round = 0; round < 2; ++round) {
    for (const std::string& key : acked_keys) client.Get(live[rng() % live.size()], key, 1);
    c.Run(2000);
  }
  out.failure = FinalReplicasAgree(c, client);
  if (!out.failure.empty()) return out;
  int register_ok = 0;
  if (with_register) {
    // After the moves: a CONSISTENT read of every key over its final primaries.
    std::vector<std::string> keys;
    for (int i = 0; i < kChurnRegisterKeys; ++i) keys.push_back("s" + std::to_string(i));
    for (const std::string& k : keys) reg.ReadOrWrite(live[rng() % live.size()], k, "");
    c.Run(3000);
    out.failure = RegistersLinearizable(reg, keys, &register_ok);
    if (!out.failure.empty()) return out;
  }
  if (totals) {
    totals->acked += static_cast<int>(client.acked().size());
    totals->changes += churn.changes;
    totals->register_ok += register_ok;
    for (const std::string& id : c.ids()) {
      if (c.Up(id)) totals->joint_rounds += c.core(id).consistent_stats().joint_rounds;
    }
  }
  out.digest = Hash64(c.trace());
  return out;
}

// Seed 39 (and at 20 ms seeds 50 and 1009 of
// ConsistentOperationsStayLinearizableAcrossMoves) never settled while a decommission
// of a member the decommissioning node still saw joining, when Advance had already made
// it up elsewhere, was refused there as a forged up -> left (Gossiper::Leave).
TEST(MembershipSimulation, ChurnLosesNoAcknowledgedWrite) {
  const std::vector<uint64_t> seeds = Seeds(50);
  const ClusterOptions options = ChurnOptions();
  Totals t;
  RunSeedsTwice(seeds, [&](uint64_t seed, bool count) {
    return RunSeed(seed, false, count ? &t : nullptr, options);
  });
  if (HasFatalFailure()) return;
  EXPECT_GT(t.acked, static_cast<int>(seeds.size()) * 50);
  EXPECT_EQ(t.changes, static_cast<int>(seeds.size()) * 6);
  std::printf("simulated %zu seeds, %d membership changes, %d acknowledged writes checked\n",
              seeds.size(), t.changes, t.acked);
}

// The same churn with CONSISTENT operations in the load, through every live node, also
// while partitions move: rounds on a moving key count joint majorities of its old and new
// owners, and moves transfer the Paxos acceptor state with the data (docs/DESIGN.md 5.6),
// so a value chosen before or during a move is what the new primaries agree on after it.
TEST(MembershipSimulation, ConsistentOperationsStayLinearizableAcrossMoves) {
  // 100 seeds: seed 1090 read a stale value before moves carried acceptor state.
  const std::vector<uint64_t> seeds = Seeds(100, 1001);
  Totals t;
  RunSeedsTwice(seeds, [&](uint64_t seed, bool count) {
    return RunSeed(seed, true, count ? &t : nullptr, ChurnOptions());
  });
  if (HasFatalFailure()) return;
  EXPECT_GT(t.register_ok, static_cast<int>(seeds.size()) * 10);
  // Operations on moving keys are no longer refused: they run as joint rounds.
  EXPECT_GT(t.joint_rounds, seeds.size());
  std::printf(
      "simulated %zu seeds with CONSISTENT operations, %d answered OK and checked, %llu joint "
      "rounds (live nodes' counts)\n",
      seeds.size(), t.register_ok, static_cast<unsigned long long>(t.joint_rounds));
}

// The checkers' self-test, on core::Node: with its glue broken on purpose
// (NodeConfig::unsafe_synced_before_transfer: a node publishes `synced` for a new ring
// before its transfers finished, so the others read from it too early) the checkers
// report a stale CONSISTENT read or a lost acknowledged write for at least one of these
// fixed seeds (with joint rounds during moves, the ring fence, the restart gate and a
// joiner's decommission through leaving, converge's handoff probation and transfer retry,
// and the hash-slot placement of data format 2,
// 1013, 1014 and 1053 (each a stale CONSISTENT read) are the first three seeds from 1001
// that catch it, found with ITSUKA_SIM_GLUE_SEARCH=3; with the slot placement alone they
// were 1008, 1021 and 1075, under the XXH3 placement before it 1013, 1224 (a lost write)
// and 1079; see the file comment for the earlier sets); the correct glue passes them.
TEST(MembershipSimulation, GlueBugIsCaught) {
  // ITSUKA_SIM_GLUE_SEARCH=K lists the first K seeds from 1001 that catch it.
  if (const char* k = std::getenv("ITSUKA_SIM_GLUE_SEARCH")) {
    int found = 0;
    for (uint64_t seed = 1001; seed < 3000 && found < std::atoi(k); ++seed) {
      const std::string f = RunSeed(seed, true, nullptr, ChurnOptions(/*broken_glue=*/true)).failure;
      if (f.rfind("acknowledged write lost", 0) != 0 && f.rfind("key s", 0) != 0) continue;
      if (!RunSeed(seed, true, nullptr, ChurnOptions()).failure.empty()) continue;
      std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed),
                  f.substr(0, f.find('\n')).c_str());
      ++found;
    }
    return;
  }
  int caught = 0;
  for (uint64_t seed : {1013, 1014, 1053}) {
    const SeedOutcome good = RunSeed(seed, true, nullptr, ChurnOptions());
    ASSERT_EQ(good.failure, "") << "seed " << seed;
    const SeedOutcome bad =
        RunSeed(seed, true, nullptr, ChurnOptions(/*broken_glue=*/true));
    const bool lost = bad.failure.rfind("acknowledged write lost", 0) == 0;
    const bool stale = bad.failure.rfind("key s", 0) == 0;  // not linearizable
    caught += lost || stale;
    std::printf("seed %llu, correct glue: passes; synced before transfer: %s\n",
                static_cast<unsigned long long>(seed),
                bad.failure.empty() ? "passes" : bad.failure.substr(0, bad.failure.find('\n')).c_str());
  }
  EXPECT_GT(caught, 0) << "no seed caught `synced` published before the transfers finished";
}

// Moves make progress under an intermittent nemesis (issue 16): a join, then a
// decommission, of a loaded cluster while every 3-10 s of virtual time a new fault
// replaces the last one -- a random partition, or a crash of a random member (the
// joining and the leaving node included) that is restarted at the next fault. Each move
// must finish while the nemesis still runs (no long heal), within 150 s, and lose no
// acknowledged write. A guard, not a reproduction: the simulator has no TCP (no
// connection stuck in retransmission backoff) and its copies are small, so it is not
// expected to fail on the code before issue 16 either (not checked); what it pins down
// is that the core's transfers resume at their cursors through every window.
std::string MoveUnderNemesis(Cluster& c, EventualClient& client, const std::string& what,
                             const std::function<bool()>& finished) {
  auto& rng = c.rng();
  std::string crashed;
  // Once the move finished, the crashed node comes back (the next move needs it).
  auto done = [&] {
    if (!finished()) return false;
    if (!crashed.empty()) c.Start(crashed);
    return true;
  };
  for (int64_t t = 0; t < 150000;) {
    if (done()) return "";
    if (!crashed.empty()) c.Start(crashed);
    crashed.clear();
    c.Partition({});
    if (rng() % 3 == 0) {
      std::vector<std::string> live = c.LiveMembers();
      live.push_back("n3");
      crashed = live[rng() % live.size()];
      c.Crash(crashed);
    } else {
      std::set<std::string> side;
      for (const std::string& id : c.ids()) {
        if (rng() % 2) side.insert(id);
      }
      c.Partition(side);
    }
    const int64_t window = 3000 + static_cast<int64_t>(rng() % 7000);
    for (int64_t w = 0; w < window; w += 100, t += 100) {
      std::vector<std::string> live = c.LiveMembers();
      if (!live.empty() && rng() % 2) {
        const std::string k = "late" + std::to_string(rng() % 100000);
        client.Put(live[rng() % live.size()], k, "v" + k, std::nullopt, 2);
      }
      c.Run(100);
      if (done()) return "";
    }
  }
  return what + " did not finish in 150 s under the nemesis";
}

bool StatusIs(const Cluster& c, const std::string& member, MemberStatus status) {
  int agree = 0;
  for (const std::string& id : c.ids()) {
    if (!c.Up(id)) continue;
    auto it = c.ViewOf(id).find(member);
    agree += it != c.ViewOf(id).end() && it->second.status == status;
  }
  return agree >= 2;
}

TEST(MembershipSimulation, MovesFinishUnderAnIntermittentNemesis) {
  for (uint64_t seed : Seeds(5, 2001)) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Cluster c(seed, ChurnOptions());
    EventualClient client(&c);
    for (const char* id : {"n0", "n1", "n2"}) c.Start(id, {"n0", "n1", "n2"});
    c.Run(3000);
    ASSERT_TRUE(c.Settled());
    for (int i = 0; i < 3000; ++i) {
      client.Put("n" + std::to_string(i % 3), "k" + std::to_string(i), "v", std::nullopt, 2);
      if (i % 50 == 49) c.Run(50);
    }
    c.Run(2000);
    c.Start("n3", {"n0"});
    ASSERT_EQ(MoveUnderNemesis(c, client, "the join of n3",
                               [&] { return StatusIs(c, "n3", MemberStatus::kUp); }), "");
    // n0 may have been restarted by the nemesis: its gate refuses membership changes
    // until it heard from a majority.
    bool left = false;
    for (int i = 0; i < 100 && !(left = c.Decommission("n0", "n1")); ++i) c.Run(100);
    ASSERT_TRUE(left);
    ASSERT_EQ(MoveUnderNemesis(c, client, "the decommission of n1",
                               [&] { return StatusIs(c, "n1", MemberStatus::kLeft); }), "");
    c.Heal();
    for (int i = 0; i < 100 && !c.Settled(); ++i) c.Run(100);
    EXPECT_EQ(MembershipConverged(c, {"n1"}), "");
    EXPECT_EQ(AckedWritesOnFinalReplicas(c, client, {"n1"}), "");
  }
}

}  // namespace
}  // namespace itsuka::core::sim
