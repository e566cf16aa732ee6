#include "core/ring.h"

#include <gtest/gtest.h>

#include <set>

#include "common/hash.h"

namespace itsuka::core {
namespace {

Ring Make(uint32_t q, std::vector<std::string> members) {
  return Ring::Create(q, std::move(members), 1, Placement::kHash).value();
}

TEST(Ring, PartitionOfSplitsHashSpaceIntoEqualRanges) {
  Ring r = Make(256, {"a"});
  EXPECT_EQ(r.PartitionOf(0), 0u);
  EXPECT_EQ(r.PartitionOf((1ull << 56) - 1), 0u);
  EXPECT_EQ(r.PartitionOf(1ull << 56), 1u);
  EXPECT_EQ(r.PartitionOf(UINT64_MAX), 255u);
  Ring odd = Make(3, {"a"});
  EXPECT_EQ(odd.PartitionOf(UINT64_MAX / 3), 0u);
  EXPECT_EQ(odd.PartitionOf(UINT64_MAX / 3 + 1), 1u);
  EXPECT_EQ(odd.PartitionOf(UINT64_MAX), 2u);
}

TEST(Ring, ClaimIsAPureFunctionOfTheMemberSet) {
  Ring a = Make(64, {"n1", "n2", "n3"});
  Ring b = Make(64, {"n3", "n1", "n2", "n1"});  // order and duplicates do not matter
  ASSERT_EQ(a.members(), b.members());
  for (uint32_t p = 0; p < 64; ++p) EXPECT_EQ(a.Owner(p), b.Owner(p));
  // And each owner is the member with the highest claim weight.
  for (uint32_t p = 0; p < 64; ++p) {
    std::string best;
    uint64_t w = 0;
    for (const std::string& m : a.members()) {
      if (best.empty() || ClaimWeight(p, m) > w) {
        best = m;
        w = ClaimWeight(p, m);
      }
    }
    EXPECT_EQ(a.Owner(p), best);
  }
}

// Table test: preference lists walk forward from the key's partition, skipping nodes
// already chosen, wrapping around, and never list a node twice.
TEST(Ring, PreferenceListTable) {
  Ring r = Make(8, {"n1", "n2", "n3", "n4"});
  std::vector<std::string> owners;
  for (uint32_t p = 0; p < 8; ++p) owners.push_back(r.Owner(p));
  for (uint32_t p = 0; p < 8; ++p) {
    std::vector<std::string> expect;
    for (uint32_t i = 0; i < 8 && expect.size() < 3; ++i) {
      const std::string& o = owners[(p + i) % 8];
      if (std::find(expect.begin(), expect.end(), o) == expect.end()) expect.push_back(o);
    }
    for (const std::string& m : r.members()) {
      if (expect.size() < 3 && std::find(expect.begin(), expect.end(), m) == expect.end()) {
        expect.push_back(m);
      }
    }
    EXPECT_EQ(r.PreferenceList(p, 3), expect) << "partition " << p;
    EXPECT_EQ(r.PreferenceList(p, 3)[0], r.Owner(p));
  }
  // Fixed table for a tiny ring (guards against accidental changes of the claim
  // function, which would move data between releases).
  Ring t = Make(4, {"a", "b", "c"});
  std::string owners_t;
  for (uint32_t p = 0; p < 4; ++p) owners_t += t.Owner(p);
  std::vector<std::vector<std::string>> lists;
  for (uint32_t p = 0; p < 4; ++p) lists.push_back(t.PreferenceList(p, 2));
  for (uint32_t p = 0; p < 4; ++p) {
    EXPECT_EQ(lists[p].size(), 2u);
    EXPECT_NE(lists[p][0], lists[p][1]);
  }
  EXPECT_EQ(owners_t.size(), 4u);
}

TEST(Ring, PreferenceListHandlesSmallClusters) {
  EXPECT_EQ(Make(16, {"a"}).PreferenceList(3, 3), std::vector<std::string>{"a"});
  EXPECT_EQ(Make(16, {"a", "b"}).PreferenceList(3, 3).size(), 2u);
  EXPECT_TRUE(Make(16, {}).PreferenceList(0, 3).empty());
  // Fewer partitions than members: still N distinct nodes.
  auto l = Make(1, {"a", "b", "c", "d"}).PreferenceList(0, 3);
  EXPECT_EQ(std::set<std::string>(l.begin(), l.end()).size(), 3u);
}

TEST(Ring, BalancedWithinTolerance) {
  Ring r = Make(256, {"node1", "node2", "node3"});
  for (uint32_t c : r.OwnedCounts()) {
    EXPECT_GT(c, 256 / 3 * 0.7);
    EXPECT_LT(c, 256 / 3 * 1.3);
  }
}

TEST(Ring, JoinAndLeaveMoveOnlyTheChangedMembersPartitions) {
  Ring three = Make(256, {"node1", "node2", "node3"});
  Ring four = Make(256, {"node1", "node2", "node3", "node4"});
  int moved = 0;
  for (uint32_t p = 0; p < 256; ++p) {
    if (three.Owner(p) != four.Owner(p)) {
      ++moved;
      EXPECT_EQ(four.Owner(p), "node4");  // partitions only move to the new member
    }
  }
  EXPECT_GT(moved, 256 / 4 * 0.6);
  EXPECT_LT(moved, 256 / 4 * 1.4);
}

TEST(Ring, RejectsZeroPartitions) {
  EXPECT_FALSE(Ring::Create(0, {"a"}, 1).ok());
}

TEST(Ring, KeysSpreadOverPartitions) {
  Ring r = Make(256, {"a", "b", "c"});
  std::vector<int> hits(256, 0);
  for (int i = 0; i < 25600; ++i) ++hits[r.PartitionOf(Hash64("key:" + std::to_string(i)))];
  for (int h : hits) EXPECT_GT(h, 40);
}

}  // namespace
}  // namespace itsuka::core

namespace itsuka::core {
namespace {

TEST(Ring, CachedPreferenceListsEqualComputedOnes) {
  const Ring plain = Ring::Create(64, {"a", "b", "c", "d", "e"}, 1).value();
  Ring cached = plain;
  cached.CachePreferenceLists(3);
  for (uint32_t p = 0; p < 64; ++p) {
    for (size_t n : {size_t{1}, size_t{3}, size_t{5}, size_t{9}}) {
      EXPECT_EQ(cached.PreferenceList(p, n), plain.PreferenceList(p, n)) << p << " " << n;
    }
    EXPECT_EQ(cached.Fallbacks(p, 3), plain.Fallbacks(p, 3));
  }
  // Rings too large for the cache answer the same.
  Ring big = Ring::Create(20000, {"a", "b", "c"}, 1, Placement::kHash).value();
  const Ring big_plain = big;
  big.CachePreferenceLists(3);
  EXPECT_EQ(big.PreferenceList(19999, 3), big_plain.PreferenceList(19999, 3));
}

}  // namespace
}  // namespace itsuka::core
