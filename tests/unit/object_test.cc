#include "core/object.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

namespace itsuka::core {
namespace {

NewVersion Value(std::string v) { return NewVersion{false, std::move(v), 0, 0}; }

std::vector<std::string> Values(const Object& o, int64_t now = 0) {
  std::vector<std::string> out;
  for (const Sibling* s : LiveSiblings(o, now)) out.push_back(s->value);
  return out;
}

const ObjectLimits kLimits;

TEST(Object, WriteWithContextSupersedesWhatItSaw) {
  Object o;
  o = ApplyWrite(o, o.clock, "n1", Value("a"), kLimits).value();
  EXPECT_EQ(Values(o), std::vector<std::string>{"a"});
  EXPECT_EQ(o.siblings[0].dot, (Dot{"n1", 1}));
  VClock seen = o.clock;
  o = ApplyWrite(o, seen, "n1", Value("b"), kLimits).value();
  EXPECT_EQ(Values(o), std::vector<std::string>{"b"});
  EXPECT_TRUE(IsWellFormed(o));
}

TEST(Object, WritesFromTheSameContextBecomeSiblings) {
  Object o = ApplyWrite(Object(), VClock(), "n1", Value("a"), kLimits).value();
  VClock ctx = o.clock;
  o = ApplyWrite(o, ctx, "n1", Value("b"), kLimits).value();
  o = ApplyWrite(o, ctx, "n1", Value("c"), kLimits).value();  // did not see b
  EXPECT_EQ(Values(o), (std::vector<std::string>{"b", "c"}));
  // A write whose context saw both resolves them.
  o = ApplyWrite(o, o.clock, "n1", Value("d"), kLimits).value();
  EXPECT_EQ(Values(o), std::vector<std::string>{"d"});
}

TEST(Object, OneClientThroughTwoCoordinatorsMakesNoFalseSiblings) {
  // The client reads from n1, writes through n2 with that context; then reads the
  // result and writes through n1. Each write sees the previous: one value remains.
  Object n1 = ApplyWrite(Object(), VClock(), "n1", Value("a"), kLimits).value();
  Object n2 = Merge(Object(), n1);
  n2 = ApplyWrite(n2, n1.clock, "n2", Value("b"), kLimits).value();
  n1 = Merge(n1, n2);
  n1 = ApplyWrite(n1, n2.clock, "n1", Value("c"), kLimits).value();
  EXPECT_EQ(Values(Merge(n1, n2)), std::vector<std::string>{"c"});
}

TEST(Object, TombstonesAndExpiryAreNotLive) {
  Object o = ApplyWrite(Object(), VClock(), "n1", NewVersion{false, "v", 1000, 0}, kLimits).value();
  EXPECT_EQ(Values(o, 999), std::vector<std::string>{"v"});
  EXPECT_TRUE(Values(o, 1000).empty());
  o = ApplyWrite(o, o.clock, "n1", NewVersion{true, "ignored", 5, 0}, kLimits).value();
  ASSERT_EQ(o.siblings.size(), 1u);
  EXPECT_TRUE(o.siblings[0].tombstone);
  EXPECT_EQ(o.siblings[0].value, "");
  EXPECT_TRUE(Values(o).empty());
}

TEST(Object, CapsGiveClearErrors) {
  ObjectLimits limits{3, 1 << 20};
  Object o;
  for (int i = 0; i < 3; ++i) {
    o = ApplyWrite(o, VClock(), "n1", Value("v"), limits).value();
  }
  Result<Object> r = ApplyWrite(o, VClock(), "n1", Value("v"), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kSiblings);
  EXPECT_NE(r.status().message().find("max 3"), std::string::npos);
  // Resolving with the full context is always possible.
  EXPECT_TRUE(ApplyWrite(o, o.clock, "n1", Value("v"), limits).ok());
  Result<Object> big = ApplyWrite(Object(), VClock(), "n1", Value(std::string(2 << 20, 'x')), limits);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), Status::Code::kTooBig);
}

// Randomized check of the dotted-version-vector sets against an oracle that tracks,
// per replica, which versions it knows and each version's causal past. Clients read a
// context from one replica and write through another; replicas merge pairwise. At
// every step each replica's siblings must be exactly the versions it knows that no
// other version it knows supersedes — nothing concurrent lost, nothing stale kept.
TEST(Object, SiblingsMatchCausalityOracle) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    const int n = 3;
    std::vector<std::string> names = {"n0", "n1", "n2"};
    std::vector<Object> rep(n);
    std::vector<std::set<Dot>> known(n);
    std::map<Dot, std::set<Dot>> past;  // version -> versions it supersedes (transitively)
    for (int step = 0; step < 80; ++step) {
      int r = static_cast<int>(rng() % n);
      if (rng() % 3 == 0) {
        int s = static_cast<int>(rng() % n);
        rep[r] = Merge(rep[r], rep[s]);
        known[r].insert(known[s].begin(), known[s].end());
      } else {
        int read_from = static_cast<int>(rng() % n);
        // Sometimes a blind write (empty context), as a client without a VGET would.
        bool blind = rng() % 5 == 0;
        VClock ctx = blind ? VClock() : rep[read_from].clock;
        std::set<Dot> ctx_known = blind ? std::set<Dot>() : known[read_from];
        Object next = ApplyWrite(rep[r], ctx, names[r], Value("s" + std::to_string(step)),
                                 ObjectLimits{1000, 1 << 30})
                          .value();
        Dot fresh;
        for (const Sibling& sib : next.siblings) {
          if (!known[r].count(sib.dot) && !ctx_known.count(sib.dot)) fresh = sib.dot;
        }
        ASSERT_EQ(fresh.node, names[r]) << "seed " << seed;
        past[fresh] = ctx_known;
        rep[r] = next;
        known[r].insert(ctx_known.begin(), ctx_known.end());
        known[r].insert(fresh);
      }
      for (int i = 0; i < n; ++i) {
        std::set<Dot> expect;
        for (const Dot& v : known[i]) {
          bool superseded = false;
          for (const Dot& w : known[i]) {
            if (past[w].count(v)) superseded = true;
          }
          if (!superseded) expect.insert(v);
        }
        std::set<Dot> got;
        for (const Sibling& sib : rep[i].siblings) got.insert(sib.dot);
        ASSERT_EQ(got, expect) << "seed " << seed << " step " << step << " replica " << i;
        ASSERT_TRUE(IsWellFormed(rep[i]));
      }
    }
    // After everyone merges with everyone, all replicas agree.
    Object all;
    for (const Object& o : rep) all = Merge(all, o);
    for (Object& o : rep) {
      o = Merge(o, all);
      EXPECT_EQ(o, all) << "seed " << seed;
    }
  }
}

TEST(Object, MergeIsCommutativeAssociativeIdempotent) {
  std::mt19937 rng(11);
  std::vector<Object> pool(4);
  for (int i = 0; i < 300; ++i) {
    int a = static_cast<int>(rng() % 4), b = static_cast<int>(rng() % 4);
    if (rng() % 2) {
      pool[a] = ApplyWrite(pool[a], pool[b].clock, "n" + std::to_string(a), Value("x"),
                           ObjectLimits{1000, 1 << 30})
                    .value();
    } else {
      pool[a] = Merge(pool[a], pool[b]);
    }
    const Object &x = pool[0], &y = pool[1], &z = pool[2];
    EXPECT_EQ(Merge(x, y), Merge(y, x));
    EXPECT_EQ(Merge(Merge(x, y), z), Merge(x, Merge(y, z)));
    EXPECT_EQ(Merge(x, x), x);
  }
}

}  // namespace
}  // namespace itsuka::core
