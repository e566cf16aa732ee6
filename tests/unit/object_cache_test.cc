#include "server/object_cache.h"

#include <gtest/gtest.h>

#include <string>

namespace itsuka::server {
namespace {

// The cache never looks inside an object beyond its size: one sibling will do.
core::Object Obj(const std::string& v) {
  core::Object o;
  o.siblings.emplace_back();
  o.siblings.back().value = v;
  return o;
}

// Keys of one length, so that entries are charged alike.
std::string Key(int i) {
  std::string k = std::to_string(i);
  return "k" + std::string(4 - k.size(), '0') + k;
}

size_t Charge(const std::string& key, const core::Object& obj) {
  return key.size() + core::ApproxBytes(obj) + ObjectCache::kEntryOverhead;
}

TEST(ObjectCache, FindReturnsWhatWasPutAndCountsHitsAndMisses) {
  ObjectCache c(1 << 20);
  EXPECT_EQ(c.Find("a"), nullptr);
  c.Put("a", Obj("1"), IndexEntry{42, false, 0});
  const ObjectCache::Entry* e = c.Find("a");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->obj.siblings[0].value, "1");
  EXPECT_EQ(e->index.digest, 42u);
  c.Put("a", Obj("2"), IndexEntry{43, false, 0});  // replaces
  EXPECT_EQ(c.Find("a")->obj.siblings[0].value, "2");
  EXPECT_EQ(c.entries(), 1u);
  EXPECT_EQ(c.bytes(), Charge("a", Obj("2")));
  EXPECT_EQ(c.hits(), 2u);
  EXPECT_EQ(c.misses(), 1u);
}

TEST(ObjectCache, AnAbsentKeyIsCachedAsAnEmptyObject) {
  ObjectCache c(1 << 20);
  c.Put("gone", core::Object(), IndexEntry{});
  const ObjectCache::Entry* e = c.Find("gone");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->obj.empty());
}

TEST(ObjectCache, StaysWithinItsBoundEvictingTheLeastRecentlyUsed) {
  const size_t one = Charge(Key(0), Obj("v"));
  ObjectCache c(one * 20);
  for (int i = 0; i < 20; ++i) c.Put(Key(i % 10), Obj("v"), {});
  ASSERT_EQ(c.entries(), 10u);
  c.Find(Key(0));  // becomes the most recently used; Key(1) is now the oldest
  for (int i = 10; i < 40; ++i) {
    c.Put(Key(i), Obj("v"), {});
    EXPECT_LE(c.bytes(), c.max_bytes());
  }
  EXPECT_EQ(c.entries(), 20u);
  EXPECT_EQ(c.Find(Key(1)), nullptr);
  EXPECT_EQ(c.evictions(), 20u);
  EXPECT_EQ(c.entries() * one, c.bytes());
}

TEST(ObjectCache, TouchedEntriesOutliveUntouchedOnes) {
  const size_t one = Charge(Key(0), Obj("v"));
  ObjectCache c(one * 16);
  for (int i = 0; i < 16; ++i) c.Put(Key(i), Obj("v"), {});
  c.Find(Key(0));
  c.Put(Key(16), Obj("v"), {});  // evicts Key(1), the least recently used
  EXPECT_NE(c.Find(Key(0)), nullptr);
  EXPECT_EQ(c.Find(Key(1)), nullptr);
  EXPECT_NE(c.Find(Key(2)), nullptr);
  EXPECT_NE(c.Find(Key(16)), nullptr);
  EXPECT_EQ(c.entries(), 16u);
}

TEST(ObjectCache, AnObjectTooLargeIsNotCachedAndDropsTheKeysOldEntry) {
  ObjectCache c(16 * 1024);
  c.Put("k", Obj("small"), {});
  c.Put("k", Obj(std::string(2000, 'x')), {});  // over a sixteenth of the bound
  EXPECT_EQ(c.Find("k"), nullptr);
  EXPECT_EQ(c.bytes(), 0u);
}

TEST(ObjectCache, EraseClearAndAZeroBound) {
  ObjectCache c(1 << 20);
  c.Put("a", Obj("1"), {});
  c.Put("b", Obj("2"), {});
  c.Erase("a");
  EXPECT_EQ(c.Find("a"), nullptr);
  EXPECT_EQ(c.bytes(), Charge("b", Obj("2")));
  c.Clear();
  EXPECT_EQ(c.entries(), 0u);
  EXPECT_EQ(c.bytes(), 0u);
  ObjectCache off(0);
  off.Put("a", Obj("1"), {});
  EXPECT_EQ(off.Find("a"), nullptr);
  EXPECT_EQ(off.entries(), 0u);
}

}  // namespace
}  // namespace itsuka::server
