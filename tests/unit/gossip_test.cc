#include "core/gossip.h"

#include <gtest/gtest.h>

#include <random>

namespace itsuka::core {
namespace {

MemberState Member(const std::string& id, uint64_t inc = 1) {
  MemberState m;
  m.id = id;
  m.incarnation = inc;
  m.client_addr = "127.0.0.1:" + std::to_string(7000 + id.size());
  m.peer_addr = "127.0.0.1:" + std::to_string(17000 + id.size());
  return m;
}

MemberState RandomState(std::mt19937_64& rng, const std::string& id) {
  MemberState m;
  m.id = id;
  m.incarnation = rng() % 3;
  m.heartbeat = rng() % 3;
  m.client_addr = "h" + std::to_string(rng() % 2);
  m.peer_addr = "p" + std::to_string(rng() % 2);
  m.synced = rng() % 2;
  m.version = rng() % 3;
  m.status = static_cast<MemberStatus>(rng() % 4);
  return m;
}

TEST(Gossip, MergeIsCommutativeAssociativeIdempotent) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 5000; ++i) {
    MemberState a = RandomState(rng, "x"), b = RandomState(rng, "x"), c = RandomState(rng, "x");
    EXPECT_EQ(MergeMember(a, b), MergeMember(b, a));
    EXPECT_EQ(MergeMember(a, a), a);
    EXPECT_EQ(MergeMember(MergeMember(a, b), c), MergeMember(a, MergeMember(b, c)));
    // The merge only ever takes a register from one of its inputs.
    MemberState m = MergeMember(a, b);
    EXPECT_TRUE(m.incarnation == a.incarnation || m.incarnation == b.incarnation);
    EXPECT_GE(m.version, std::max(a.version, b.version));
  }
}

TEST(Gossip, HigherVersionsWinPerRegister) {
  MemberState a = Member("n1", 1), b = Member("n1", 2);
  a.version = 5;
  a.status = MemberStatus::kLeaving;
  b.version = 4;
  b.status = MemberStatus::kUp;
  b.peer_addr = "10.0.0.1:17001";
  MemberState m = MergeMember(a, b);
  EXPECT_EQ(m.incarnation, 2u);                // liveness from b
  EXPECT_EQ(m.peer_addr, "10.0.0.1:17001");
  EXPECT_EQ(m.status, MemberStatus::kLeaving);  // ownership from a: a restart cannot undo it
  EXPECT_EQ(m.version, 5u);
}

TEST(Gossip, MergeViewIsOrderIndependent) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) {
    std::vector<View> views(4);
    for (View& v : views) {
      for (const char* id : {"a", "b", "c"}) {
        if (rng() % 2) v[id] = RandomState(rng, id);
      }
    }
    View forward, backward;
    for (size_t k = 0; k < views.size(); ++k) MergeView(&forward, views[k]);
    for (size_t k = views.size(); k-- > 0;) MergeView(&backward, views[k]);
    EXPECT_EQ(forward, backward);
    EXPECT_FALSE(MergeView(&forward, backward));  // idempotent: nothing new
  }
}

// N gossipers, seeded random pairings with message loss: every view ends identical and
// holds every member.
void Converge(uint64_t seed, int n, double loss) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back("n" + std::to_string(i));
  std::vector<Gossiper> g;
  // Node i knows only node 0 as a seed (node 0 knows nobody): everyone else is
  // learned by gossip.
  for (int i = 0; i < n; ++i) {
    g.emplace_back(Member(ids[i]), i == 0 ? std::vector<std::string>{} : std::vector<std::string>{ids[0]});
  }
  std::bernoulli_distribution lost(loss);
  int rounds = 0;
  auto converged = [&] {
    for (int i = 1; i < n; ++i) {
      if (g[i].view() != g[0].view()) return false;
    }
    return static_cast<int>(g[0].view().size()) == n;
  };
  // Heartbeats keep changing the views, so stop them once everyone has everything and
  // let a few quiet rounds settle the last differences.
  while (rounds < 400) {
    ++rounds;
    for (int i = 0; i < n; ++i) {
      // Nobody holds data to copy: each node is synced with whatever ring it sees.
      g[i].SetSynced(WriteFingerprint(g[i].view()));
      std::string to = rounds < 60 ? g[i].Round(rng) : ids[rng() % n];
      if (to.empty() || to == ids[i]) continue;
      int j = static_cast<int>(std::find(ids.begin(), ids.end(), to) - ids.begin());
      if (lost(rng)) continue;  // the push is lost
      g[j].Receive(g[i].view());
      if (lost(rng)) continue;  // the pull is lost
      g[i].Receive(g[j].view());
    }
    if (rounds >= 60 && converged()) break;
  }
  ASSERT_TRUE(converged()) << "seed " << seed << " after " << rounds << " rounds";
  for (const auto& [id, m] : g[0].view()) EXPECT_EQ(m.status, MemberStatus::kUp) << id;
}

TEST(Gossip, ViewsConvergeUnderRandomPairings) {
  for (uint64_t seed = 1; seed <= 20; ++seed) Converge(seed, 8, 0.0);
}

TEST(Gossip, ViewsConvergeWithMessageLoss) {
  for (uint64_t seed = 1; seed <= 20; ++seed) Converge(seed, 8, 0.3);
}

// Two nodes exchanging views, each synced with what it sees (nothing to copy).
void Exchange(Gossiper& a, Gossiper& b, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    a.SetSynced(WriteFingerprint(a.view()));
    b.Receive(a.view());
    b.SetSynced(WriteFingerprint(b.view()));
    a.Receive(b.view());
  }
}

TEST(Gossip, FreshClusterBootstrapsOnlyAfterHearingEverySeed) {
  Gossiper a(Member("a"), {"b"});
  Gossiper b(Member("b"), {"a"});
  std::mt19937_64 rng(1);
  EXPECT_EQ(a.Round(rng), "b");  // b not heard yet: a stays joining
  EXPECT_EQ(a.self().status, MemberStatus::kJoining);
  b.Receive(a.view());
  EXPECT_EQ(b.self().status, MemberStatus::kUp);  // heard every seed, nobody holds data
  a.Receive(b.view());
  // b was first: a joins the cluster b started (copying whatever b holds).
  EXPECT_EQ(a.self().status, MemberStatus::kJoining);
  Exchange(a, b, 2);
  EXPECT_EQ(a.self().status, MemberStatus::kUp);
  EXPECT_EQ(a.view(), b.view());
}

TEST(Gossip, JoinerStaysJoiningUntilEveryWriteMemberIsSynced) {
  Gossiper a(Member("a"), {});
  std::mt19937_64 rng(1);
  a.Round(rng);
  ASSERT_EQ(a.self().status, MemberStatus::kUp);
  Gossiper c(Member("c"), {"a"});
  a.Receive(c.view());
  c.Receive(a.view());
  EXPECT_EQ(c.self().status, MemberStatus::kJoining);  // a holds data: no bootstrap
  const uint64_t fp = WriteFingerprint(c.view());
  EXPECT_EQ(WriteMembers(c.view()), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(ReadMembers(c.view()), (std::vector<std::string>{"a"}));
  c.SetSynced(fp);
  EXPECT_EQ(c.self().status, MemberStatus::kJoining);  // a has not said it is synced
  a.Receive(c.view());
  a.SetSynced(WriteFingerprint(a.view()));
  EXPECT_EQ(a.view().at("c").status, MemberStatus::kUp);
  c.Receive(a.view());
  EXPECT_EQ(c.self().status, MemberStatus::kUp);
}

TEST(Gossip, LeaveCompletesAfterSyncAndSurvivesRestart) {
  Gossiper a(Member("a"), {"b"}), b(Member("b"), {"a"});
  Exchange(a, b, 3);
  ASSERT_EQ(a.view().at("b").status, MemberStatus::kUp);
  ASSERT_TRUE(a.Leave("b"));
  EXPECT_FALSE(a.Leave("b"));
  EXPECT_FALSE(a.Leave("nobody"));
  EXPECT_EQ(a.view().at("b").status, MemberStatus::kLeaving);
  // b restarts (new incarnation) before it hears of the leave: the leave still wins.
  Gossiper b2(Member("b", 7), {"a"});
  b2.Restore(b.view());
  a.Receive(b2.view());
  EXPECT_EQ(a.view().at("b").status, MemberStatus::kLeaving);
  EXPECT_EQ(a.view().at("b").incarnation, 7u);
  b2.Receive(a.view());
  EXPECT_EQ(b2.self().status, MemberStatus::kLeaving);
  a.SetSynced(WriteFingerprint(a.view()));
  EXPECT_EQ(a.view().at("b").status, MemberStatus::kLeft);
  EXPECT_EQ(ReadMembers(a.view()), (std::vector<std::string>{"a"}));
}

// DESIGN 5.6, open point 3 (sim seed 1221): c's join completed at a (every write-ring
// member synced, Advance made c up) while b, where an operator decommissions c, still
// sees c joining. The decommission must not undo the completed join: c goes leaving
// everywhere (still a read member, a transfer source) and is left only once the
// remaining write-ring members synced the ring without it.
TEST(Gossip, LeaveOfAJoinerUpElsewhereGoesThroughLeaving) {
  Gossiper a(Member("a"), {"b"}), b(Member("b"), {"a"});
  Exchange(a, b, 3);
  ASSERT_EQ(a.view().at("b").status, MemberStatus::kUp);
  Gossiper c(Member("c"), {"a"});
  c.Receive(a.view());
  a.Receive(c.view());
  b.Receive(a.view());
  ASSERT_EQ(b.view().at("c").status, MemberStatus::kJoining);
  c.SetSynced(WriteFingerprint(c.view()));
  b.SetSynced(WriteFingerprint(b.view()));
  a.Receive(c.view());
  a.Receive(b.view());
  a.SetSynced(WriteFingerprint(a.view()));
  ASSERT_EQ(a.view().at("c").status, MemberStatus::kUp);  // the join completed at a
  ASSERT_EQ(b.view().at("c").status, MemberStatus::kJoining);  // b has not heard
  ASSERT_TRUE(b.Leave("c"));
  EXPECT_EQ(b.view().at("c").status, MemberStatus::kLeaving);  // not left
  a.Receive(b.view());
  EXPECT_EQ(a.view().at("c").status, MemberStatus::kLeaving);
  EXPECT_EQ(ReadMembers(a.view()), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(WriteMembers(a.view()), (std::vector<std::string>{"a", "b"}));
  c.Receive(a.view());
  EXPECT_EQ(c.self().status, MemberStatus::kLeaving);
  // Left only after a and b synced the ring without c.
  a.SetSynced(WriteFingerprint(a.view()));
  EXPECT_EQ(a.view().at("c").status, MemberStatus::kLeaving);
  b.Receive(a.view());
  b.SetSynced(WriteFingerprint(b.view()));
  a.Receive(b.view());
  EXPECT_EQ(a.view().at("c").status, MemberStatus::kLeft);
  EXPECT_EQ(a.view().at("c").version, 3u);
}

// A joiner that died before it synced stays removable: it goes leaving, holds no move
// up while unreachable (MoveVisible), and is left once the others synced.
TEST(Gossip, DeadJoinerIsStillRemovable) {
  Gossiper a(Member("a"), {"b"}), b(Member("b"), {"a"});
  Exchange(a, b, 3);
  Gossiper c(Member("c"), {"a"});
  c.Receive(a.view());
  a.Receive(c.view());
  b.Receive(a.view());
  // a and b gain nothing from c's join and say so at once; c dies before it synced.
  a.SetSynced(WriteFingerprint(a.view()));
  b.SetSynced(WriteFingerprint(b.view()));
  a.Receive(b.view());
  ASSERT_EQ(a.view().at("c").status, MemberStatus::kJoining);
  ASSERT_TRUE(a.Leave("c"));
  EXPECT_EQ(a.view().at("c").status, MemberStatus::kLeaving);
  b.Receive(a.view());
  a.Receive(b.view());
  auto reachable = [](const std::string& id) { return id != "c"; };
  EXPECT_TRUE(MoveVisible(a.view(), reachable));
  // Each write-ring member's `synced` from before c's join does not count: the
  // fingerprint with c leaving is a new one.
  EXPECT_EQ(a.view().at("c").status, MemberStatus::kLeaving);
  a.SetSynced(WriteFingerprint(a.view()));
  EXPECT_EQ(a.view().at("c").status, MemberStatus::kLeaving);  // b has not synced it
  b.Receive(a.view());
  b.SetSynced(WriteFingerprint(b.view()));
  a.Receive(b.view());
  b.Receive(a.view());
  EXPECT_EQ(a.view().at("c").status, MemberStatus::kLeft);
  EXPECT_EQ(b.view().at("c").status, MemberStatus::kLeft);
  EXPECT_EQ(ReadMembers(a.view()), (std::vector<std::string>{"a", "b"}));
}

// The fingerprint of {a, b} with c leaving is not that of {a, b} before c joined.
TEST(Gossip, WriteFingerprintNamesTheLeavingMembersToo) {
  View v;
  v["a"].id = "a";
  v["a"].status = MemberStatus::kUp;
  v["b"] = v["a"];
  v["b"].id = "b";
  const uint64_t before = WriteFingerprint(v);
  v["c"] = v["a"];
  v["c"].id = "c";
  v["c"].status = MemberStatus::kLeaving;
  EXPECT_NE(WriteFingerprint(v), before);
  v["c"].status = MemberStatus::kLeft;
  EXPECT_EQ(WriteFingerprint(v), before);
}

TEST(Gossip, NodeThatLostItsStateRefutesItsOldIncarnation) {
  Gossiper a(Member("a"), {"b"}), b(Member("b", 5), {"a"});
  for (int i = 0; i < 3; ++i) {
    std::mt19937_64 rng(i);
    b.Round(rng);
  }
  a.Receive(b.view());
  Gossiper fresh(Member("b", 1), {"a"});  // b's data was wiped: incarnation 1 again
  fresh.Receive(a.view());
  EXPECT_GT(fresh.self().incarnation, 5u);
  a.Receive(fresh.view());
  EXPECT_EQ(a.view().at("b").incarnation, fresh.self().incarnation);
}

TEST(Gossip, TransferPlanNamesTheNewOwnersSources) {
  Ring read = Ring::Create(64, {"a", "b", "c"}, 1).value();
  Ring write = Ring::Create(64, {"a", "b", "c", "d"}, 2).value();
  auto plan = TransferPlan(read, write, "d", 3);
  ASSERT_FALSE(plan.empty());
  size_t gained = 0;
  for (uint32_t p = 0; p < 64; ++p) {
    auto w = write.PreferenceList(p, 3);
    if (std::find(w.begin(), w.end(), "d") == w.end()) continue;
    ++gained;
    for (const std::string& src : read.PreferenceList(p, 3)) EXPECT_EQ(plan[src].count(p), 1u);
  }
  EXPECT_EQ(plan["a"].size(), gained);  // with 3 old members every one holds every partition
  EXPECT_TRUE(TransferPlan(read, write, "a", 3).empty());  // a gains nothing
  EXPECT_TRUE(TransferPlan(read, read, "d", 3).empty());
}

}  // namespace
}  // namespace itsuka::core
