#include "core/version.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace itsuka::core {
namespace {

VClock Clock(std::vector<VClock::Entry> e) { return VClock(std::move(e)); }

TEST(VClock, GetRaiseJoinDescends) {
  VClock a;
  EXPECT_EQ(a.Get("x"), 0u);
  a.Raise("b", 2);
  a.Raise("a", 1);
  a.Raise("b", 1);  // never lowers
  EXPECT_EQ(a, Clock({{"a", 1}, {"b", 2}}));
  VClock b = Clock({{"b", 1}, {"c", 5}});
  EXPECT_FALSE(a.Descends(b));
  EXPECT_FALSE(b.Descends(a));
  VClock j = a;
  j.Join(b);
  EXPECT_EQ(j, Clock({{"a", 1}, {"b", 2}, {"c", 5}}));
  EXPECT_TRUE(j.Descends(a));
  EXPECT_TRUE(j.Descends(b));
  EXPECT_TRUE(j.Descends(VClock()));
  EXPECT_TRUE(j.Covers(Dot{"c", 5}));
  EXPECT_FALSE(j.Covers(Dot{"c", 6}));
  EXPECT_EQ(ToString(j), "{a:1,b:2,c:5}");
}

TEST(VClock, WellFormedness) {
  EXPECT_TRUE(VClock::IsWellFormed({{"a", 1}, {"b", 1}}));
  EXPECT_FALSE(VClock::IsWellFormed({{"b", 1}, {"a", 1}}));
  EXPECT_FALSE(VClock::IsWellFormed({{"a", 1}, {"a", 2}}));
  EXPECT_FALSE(VClock::IsWellFormed({{"a", 0}}));
}

// Randomized check against a brute-force happens-before oracle: processes perform
// local events, sends and receives; each event's vector clock must descend another's
// exactly when the oracle's explicit causal graph says it happened after it.
TEST(VClock, MatchesHappensBeforeOracle) {
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    std::mt19937 rng(seed);
    const int procs = 2 + static_cast<int>(seed % 4);
    const int events = 60;
    struct Event {
      int proc;
      std::vector<int> preds;  // direct causal predecessors
      VClock clock;
    };
    std::vector<Event> ev;
    std::vector<int> last(procs, -1);
    std::vector<VClock> state(procs);
    for (int i = 0; i < events; ++i) {
      int p = std::uniform_int_distribution<int>(0, procs - 1)(rng);
      Event e{p, {}, {}};
      if (last[p] >= 0) e.preds.push_back(last[p]);
      // Receive a message sent at a random earlier event of another process.
      if (i > 0 && rng() % 2 == 0) {
        int from = std::uniform_int_distribution<int>(0, i - 1)(rng);
        if (ev[from].proc != p) {
          e.preds.push_back(from);
          state[p].Join(ev[from].clock);
        }
      }
      std::string name = "p" + std::to_string(p);
      state[p].Raise(name, state[p].Get(name) + 1);
      e.clock = state[p];
      ev.push_back(e);
      last[p] = i;
    }
    // Oracle: reachability over the explicit graph.
    std::vector<std::set<int>> past(events);
    for (int i = 0; i < events; ++i) {
      past[i].insert(i);
      for (int pr : ev[i].preds) past[i].insert(past[pr].begin(), past[pr].end());
    }
    for (int a = 0; a < events; ++a) {
      for (int b = 0; b < events; ++b) {
        bool hb = past[b].count(a) > 0;  // a happened before (or is) b
        ASSERT_EQ(ev[b].clock.Descends(ev[a].clock), hb)
            << "seed " << seed << " a=" << a << " b=" << b;
      }
    }
  }
}

TEST(VClock, JoinIsALattice) {
  std::mt19937 rng(3);
  auto random_clock = [&] {
    VClock c;
    for (int i = 0; i < 4; ++i) {
      if (rng() % 2) c.Raise(std::string(1, static_cast<char>('a' + i)), rng() % 5 + 1);
    }
    return c;
  };
  for (int i = 0; i < 500; ++i) {
    VClock a = random_clock(), b = random_clock(), c = random_clock();
    VClock ab = a, ba = b;
    ab.Join(b);
    ba.Join(a);
    EXPECT_EQ(ab, ba);
    VClock ab_c = ab, bc = b;
    ab_c.Join(c);
    bc.Join(c);
    VClock a_bc = a;
    a_bc.Join(bc);
    EXPECT_EQ(ab_c, a_bc);
    VClock aa = a;
    aa.Join(a);
    EXPECT_EQ(aa, a);
    EXPECT_TRUE(ab.Descends(a) && ab.Descends(b));
  }
}

}  // namespace
}  // namespace itsuka::core
