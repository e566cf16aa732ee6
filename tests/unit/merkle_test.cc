// Merkle trees against a brute-force model: the set of leaves holding a (key, digest)
// pair present on one side only must be exactly what the top-down diff finds.
#include "core/merkle.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "common/hash.h"

namespace itsuka::core {
namespace {

using Model = std::map<std::string, uint64_t>;  // key -> digest

void Apply(MerkleTree& t, Model& m, const std::string& key, uint64_t digest) {
  auto it = m.find(key);
  const uint64_t old = it == m.end() ? 0 : it->second;
  t.Update(key, Hash64(key), old, digest);
  if (digest == 0) {
    m.erase(key);
  } else {
    m[key] = digest;
  }
}

MerkleTree Build(const Model& m, uint32_t depth) {
  MerkleTree t(depth);
  for (const auto& [k, d] : m) t.Update(k, Hash64(k), 0, d);
  return t;
}

std::vector<uint32_t> BruteDiff(const Model& a, const Model& b, uint32_t depth) {
  std::set<uint32_t> leaves;
  for (const auto& [k, d] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second != d) leaves.insert(MerkleLeafOf(Hash64(k), depth));
  }
  for (const auto& [k, d] : b) {
    if (!a.count(k)) leaves.insert(MerkleLeafOf(Hash64(k), depth));
  }
  return {leaves.begin(), leaves.end()};
}

TEST(MerkleTest, DepthForPartitionCounts) {
  EXPECT_EQ(MerkleDepthFor(1), 3u);
  EXPECT_EQ(MerkleDepthFor(256), 3u);
  EXPECT_EQ(MerkleDepthFor(257), 2u);
  EXPECT_EQ(MerkleDepthFor(4096), 2u);
  EXPECT_EQ(MerkleDepthFor(65536), 1u);
}

TEST(MerkleTest, EmptyTreesAgreeAndRemovalRestoresRoot) {
  MerkleTree t(3);
  EXPECT_EQ(t.root(), 0u);
  t.Update("k", Hash64("k"), 0, 42);
  EXPECT_NE(t.root(), 0u);
  EXPECT_EQ(t.keys(), 1u);
  t.Update("k", Hash64("k"), 42, 0);
  EXPECT_EQ(t.root(), 0u);
  EXPECT_EQ(t.keys(), 0u);
}

TEST(MerkleTest, OrderIndependent) {
  std::mt19937_64 rng(1);
  Model m;
  for (int i = 0; i < 500; ++i) m["key" + std::to_string(rng() % 100000)] = rng() | 1;
  MerkleTree fwd = Build(m, 3);
  MerkleTree rev(3);
  for (auto it = m.rbegin(); it != m.rend(); ++it) rev.Update(it->first, Hash64(it->first), 0, it->second);
  EXPECT_EQ(fwd.root(), rev.root());
  EXPECT_TRUE(MerkleDiffLeaves(fwd, rev).empty());
}

TEST(MerkleTest, RandomizedDiffMatchesBruteForce) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    std::mt19937_64 rng(seed);
    const uint32_t depth = 1 + static_cast<uint32_t>(seed % 3);
    Model a, b;
    MerkleTree ta(depth), tb(depth);
    const int keys = static_cast<int>(rng() % 3000);
    for (int i = 0; i < keys; ++i) {
      std::string k = "k" + std::to_string(rng() % 5000);
      uint64_t d = rng() | 1;
      Apply(ta, a, k, d);
      Apply(tb, b, k, d);
    }
    ASSERT_EQ(ta.root(), tb.root()) << seed;
    // Random mutations on either side: new values, removals, new keys, and some
    // changes made on both sides alike (which must not show).
    const int muts = static_cast<int>(rng() % 40);
    for (int i = 0; i < muts; ++i) {
      std::string k = "k" + std::to_string(rng() % 6000);
      const uint64_t d = (rng() % 4 == 0) ? 0 : (rng() | 1);
      switch (rng() % 3) {
        case 0: Apply(ta, a, k, d); break;
        case 1: Apply(tb, b, k, d); break;
        default: Apply(ta, a, k, d); Apply(tb, b, k, d); break;
      }
    }
    EXPECT_EQ(MerkleDiffLeaves(ta, tb), BruteDiff(a, b, depth)) << "seed " << seed;
    EXPECT_EQ(ta.keys(), a.size());
    // Incremental updates give the same tree as a build from scratch.
    MerkleTree fresh = Build(a, depth);
    EXPECT_EQ(fresh.root(), ta.root()) << "seed " << seed;
    EXPECT_TRUE(MerkleDiffLeaves(fresh, ta).empty());
    EXPECT_EQ(ta.root() == tb.root(), a == b) << "seed " << seed;
  }
}

TEST(MerkleTest, ObjectDigestDistinguishesFields) {
  Object o;
  o.clock = VClock({{"a", 2}});
  o.siblings.push_back(Sibling{Dot{"a", 2}, false, "v", 0, 5});
  const uint64_t base = ObjectDigest(o);
  EXPECT_NE(base, 0u);
  EXPECT_EQ(ObjectDigest(Object()), 0u);
  Object same = o;
  EXPECT_EQ(ObjectDigest(same), base);
  Object tomb = o;
  tomb.siblings[0].tombstone = true;
  tomb.siblings[0].value.clear();
  EXPECT_NE(ObjectDigest(tomb), base);
  Object ttl = o;
  ttl.siblings[0].expire_at_ms = 9;
  EXPECT_NE(ObjectDigest(ttl), base);
  Object clock = o;
  clock.clock = VClock({{"a", 2}, {"b", 1}});
  EXPECT_NE(ObjectDigest(clock), base);
}

}  // namespace
}  // namespace itsuka::core
