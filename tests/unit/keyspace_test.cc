// The keyspace's pure parts (core/keyspace.h) and the store's exact key counts and
// SCAN answers (server/store.h).
#include <gtest/gtest.h>

#include <set>

#include "core/keyspace.h"
#include "server/store.h"
#include "storage/mem_engine.h"

namespace itsuka {
namespace {

using core::GlobMatch;

// Cases checked against Redis's stringmatchlen (util.c) rules.
TEST(KeyspaceGlob, RedisRules) {
  EXPECT_TRUE(GlobMatch("", ""));
  EXPECT_FALSE(GlobMatch("", "a"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("*", "anything"));
  EXPECT_TRUE(GlobMatch("h?llo", "hello"));
  EXPECT_FALSE(GlobMatch("h?llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h*llo", "hllo"));
  EXPECT_TRUE(GlobMatch("h*llo", "heeeello"));
  EXPECT_TRUE(GlobMatch("h[ae]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[ae]llo", "hillo"));
  EXPECT_TRUE(GlobMatch("h[^e]llo", "hallo"));
  EXPECT_FALSE(GlobMatch("h[^e]llo", "hello"));
  EXPECT_TRUE(GlobMatch("h[a-b]llo", "hbllo"));
  EXPECT_TRUE(GlobMatch("h[b-a]llo", "hallo"));  // a backwards range, as Redis
  EXPECT_FALSE(GlobMatch("h[a-b]llo", "hcllo"));
  EXPECT_TRUE(GlobMatch("h\\*llo", "h*llo"));
  EXPECT_FALSE(GlobMatch("h\\*llo", "hello"));
  EXPECT_TRUE(GlobMatch("[\\]]", "]"));
  EXPECT_TRUE(GlobMatch("[!a]", "!"));   // "!" is a literal in a class, as in Redis
  EXPECT_FALSE(GlobMatch("[!a]", "b"));
  EXPECT_TRUE(GlobMatch("a[bc", "ab"));   // an unclosed class runs to the end
  EXPECT_TRUE(GlobMatch("user:*:name", "user:42:name"));
  EXPECT_FALSE(GlobMatch("user:*:name", "user:42:names"));
  EXPECT_TRUE(GlobMatch("*a*b*", "xxaxxbxx"));
  EXPECT_FALSE(GlobMatch("*a*b*", "xxbxxaxx"));
  EXPECT_TRUE(GlobMatch("key:*", "key:"));
  EXPECT_TRUE(GlobMatch("HeLLo", "hello", /*nocase=*/true));
  EXPECT_FALSE(GlobMatch("HeLLo", "hello"));
  EXPECT_TRUE(GlobMatch(std::string("a\0b", 3), std::string("a\0b", 3)));
}

TEST(KeyspaceGlob, HostilePatternIsBounded) {
  // Redis's recursive matcher is exponential on this without its skip rule; here it is
  // pattern x key steps.
  const std::string key(4000, 'a');
  std::string pat;
  for (int i = 0; i < 50; ++i) pat += "*a";
  pat += "b";
  EXPECT_FALSE(GlobMatch(pat, key));
}

TEST(KeyspaceCursor, RoundTripsAndRefusesBadText) {
  const core::ScanCursor c{17, 4095};
  const uint64_t v = core::EncodeScanCursor(c);
  EXPECT_EQ(v, (uint64_t{17} << 32) | 4095);
  Result<core::ScanCursor> back = core::DecodeScanCursor(std::to_string(v), 256, 4096);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, c);
  EXPECT_EQ(core::EncodeScanCursor({}), 0u);  // the start is 0
  EXPECT_TRUE(core::DecodeScanCursor("0", 256, 4096).ok());
  EXPECT_FALSE(core::DecodeScanCursor("", 256, 4096).ok());
  EXPECT_FALSE(core::DecodeScanCursor("-1", 256, 4096).ok());
  EXPECT_FALSE(core::DecodeScanCursor("12x", 256, 4096).ok());
  EXPECT_FALSE(core::DecodeScanCursor("18446744073709551616", 256, 4096).ok());
  EXPECT_FALSE(core::DecodeScanCursor(std::to_string(uint64_t{256} << 32), 256, 4096).ok());
  EXPECT_FALSE(core::DecodeScanCursor("4096", 256, 4096).ok());
  EXPECT_EQ(core::NextPartition(3, 256), (core::ScanCursor{4, 0}));
  EXPECT_FALSE(core::NextPartition(255, 256).has_value());
}

TEST(KeyspaceMerge, UnionUpToTheSmallestCoveredLeaf) {
  core::ScanReply a{1, true, "", {"k1", "k2", "k5"}, {3, 4, 9}, 10};
  core::ScanReply b{2, true, "", {"k0", "k2", "k3"}, {1, 4, 5}, 6};
  uint32_t next = 0;
  std::vector<std::string> keys = core::MergeScanReplies({a, b}, &next);
  EXPECT_EQ(next, 6u);
  // k5 (leaf 9) is beyond what b covered: the next step returns it.
  EXPECT_EQ(keys, (std::vector<std::string>{"k0", "k1", "k2", "k3"}));
}

TEST(KeyspaceCount, MaxPerPartitionSummed) {
  const std::vector<uint64_t> n1{3, 0, 7}, n2{4, 1, 7};
  uint32_t missing = 99;
  EXPECT_EQ(core::SumPartitionCounts({{&n1, &n2}, {&n2}, {&n1}}, &missing), 4u + 1u + 7u);
  EXPECT_FALSE(core::SumPartitionCounts({{&n1}, {}, {&n1}}, &missing).has_value());
  EXPECT_EQ(missing, 1u);
}

core::Object Value(const std::string& v, uint64_t counter, int64_t expire_at_ms = 0) {
  core::Object o;
  o.clock = core::VClock({{"n1", counter}});
  o.siblings.push_back(core::Sibling{core::Dot{"n1", counter}, false, v, expire_at_ms, 1});
  return o;
}

core::Object Tombstone(uint64_t counter) {
  core::Object o;
  o.clock = core::VClock({{"n1", counter}});
  o.siblings.push_back(core::Sibling{core::Dot{"n1", counter}, true, "", 0, 1});
  return o;
}

TEST(KeyspaceStore, ExactCountsFollowCommitsAndRestarts) {
  storage::MemEngine engine;
  {
    server::Store store(engine, false);
    ASSERT_TRUE(store.EnableMerkle(16).ok());
    for (int i = 0; i < 100; ++i) store.Stage("k" + std::to_string(i), Value("v", 1));
    ASSERT_TRUE(store.Commit().ok());
    EXPECT_EQ(store.value_keys(), 100u);
    for (int i = 0; i < 30; ++i) store.Stage("k" + std::to_string(i), Tombstone(2));
    store.Stage("k50", Value("w", 2));                // rewritten: still one key
    store.Stage("e1", Value("x", 1, /*expire=*/10));  // an expired value counts until reclaimed
    ASSERT_TRUE(store.Commit().ok());
    EXPECT_EQ(store.value_keys(), 71u);
    store.Stage("k0", core::Object());  // a purged tombstone
    store.Stage("k99", core::Object());  // a purged value (as a corrupted copy is dropped)
    ASSERT_TRUE(store.Commit().ok());
    EXPECT_EQ(store.value_keys(), 70u);
    uint64_t sum = 0;
    for (uint64_t c : store.value_counts()) sum += c;
    EXPECT_EQ(sum, 70u);
  }
  server::Store again(engine, false);
  ASSERT_TRUE(again.EnableMerkle(16).ok());  // rebuilt from the index
  EXPECT_EQ(again.value_keys(), 70u);
  // A tombstone over a key that the index knew only as a purge candidate (the expiring
  // value e1) moves the count from the object, not the index entry.
  again.Stage("e1", Tombstone(2));
  ASSERT_TRUE(again.Commit().ok());
  EXPECT_EQ(again.value_keys(), 69u);
}

TEST(KeyspaceStore, ScanLeavesCoversEveryLiveKeyOnce) {
  storage::MemEngine engine;
  server::Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(4).ok());
  std::set<std::string> want;
  for (int i = 0; i < 2000; ++i) {
    const std::string k = "key:" + std::to_string(i);
    store.Stage(k, i % 10 == 0 ? Tombstone(1) : Value("v", 1, i % 10 == 1 ? 10 : 0));
    if (i % 10 > 1) want.insert(k);
  }
  ASSERT_TRUE(store.Commit().ok());
  std::multiset<std::string> seen;
  const uint32_t leaves = store.LeavesPerPartition();
  for (uint32_t p = 0; p < 4; ++p) {
    uint32_t leaf = 0;
    while (leaf < leaves) {
      core::ScanReply r = store.ScanLeaves(core::ScanRequest{1, p, leaf, leaves, 7, ""}, 1000);
      ASSERT_TRUE(r.ok) << r.error;
      ASSERT_GT(r.next_leaf, leaf);
      for (const std::string& k : r.keys) seen.insert(k);
      leaf = r.next_leaf;
    }
  }
  EXPECT_EQ(seen.size(), want.size());
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), want);
  core::ScanReply m = store.ScanLeaves(core::ScanRequest{1, 0, 0, leaves, 4096, "key:1?"}, 1000);
  for (const std::string& k : m.keys) EXPECT_TRUE(GlobMatch("key:1?", k)) << k;
  EXPECT_FALSE(store.ScanLeaves(core::ScanRequest{1, 4, 0, 1, 10, ""}, 0).ok);
  EXPECT_FALSE(store.ScanLeaves(core::ScanRequest{1, 0, 2, 1, 10, ""}, 0).ok);
}

}  // namespace
}  // namespace itsuka
