// Redis Cluster hash slots (common/keyslot.h), slot placement on partitions
// (core/ring.h), and the data format's version checks (server/data_format.h).
#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "common/keyslot.h"
#include "core/ring.h"
#include "itsuka/config.h"
#include "server/data_format.h"
#include "server/node.h"
#include "storage/rocksdb_engine.h"

namespace itsuka {
namespace {

TEST(KeySlot, Crc16IsXmodem) {
  EXPECT_EQ(Crc16("123456789"), 0x31C3);  // the check value of CRC16-XMODEM
  EXPECT_EQ(Crc16(""), 0);
}

TEST(KeySlot, KnownRedisSlots) {
  // Values from Redis Cluster (CLUSTER KEYSLOT on a real Redis).
  EXPECT_EQ(KeySlot("foo"), 12182u);
  EXPECT_EQ(KeySlot("bar"), 5061u);
  EXPECT_EQ(KeySlot("hello"), 866u);
  EXPECT_EQ(KeySlot("123456789"), 0x31C3u % 16384);
}

TEST(KeySlot, HashTags) {
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(HashTagOf("foo{bar}{zap}"), "bar");  // the first '{' and the first '}' after it
  EXPECT_EQ(HashTagOf("foo{}{bar}"), "foo{}{bar}");  // empty tag: the whole key
  EXPECT_EQ(HashTagOf("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(HashTagOf("foo{bar"), "foo{bar");        // no closing brace
  EXPECT_EQ(HashTagOf("foo}bar{"), "foo}bar{");
  EXPECT_EQ(HashTagOf("{}"), "{}");
}

TEST(SlotPlacement, PartitionsHoldConsecutiveSlots) {
  core::Ring r = core::Ring::Create(256, {"a", "b", "c"}, 1, core::Placement::kSlots).value();
  EXPECT_EQ(r.placement(), core::Placement::kSlots);
  EXPECT_EQ(r.SlotsPerPartition(), 64u);
  EXPECT_EQ(r.PartitionOfSlot(0), 0u);
  EXPECT_EQ(r.PartitionOfSlot(63), 0u);
  EXPECT_EQ(r.PartitionOfSlot(64), 1u);
  EXPECT_EQ(r.PartitionOfSlot(16383), 255u);
  EXPECT_EQ(r.PartitionOfKey("foo"), 12182u / 64);
  EXPECT_EQ(r.PartitionOfKey("{user1000}.following"), r.PartitionOfKey("{user1000}.followers"));
  EXPECT_EQ(core::PartitionOfKey("foo", 256, core::Placement::kSlots), 12182u / 64);
  // Every slot is placed (Q = 16384: one slot per partition, Q = 1: all in one).
  EXPECT_EQ(core::PartitionOfKey("foo", 16384, core::Placement::kSlots), 12182u);
  EXPECT_EQ(core::PartitionOfKey("foo", 1, core::Placement::kSlots), 0u);
}

TEST(SlotPlacement, SpreadsKeysEvenly) {
  std::map<uint32_t, int> hits;
  for (int i = 0; i < 25600; ++i) {
    ++hits[core::PartitionOfKey("key:" + std::to_string(i), 256, core::Placement::kSlots)];
  }
  EXPECT_EQ(hits.size(), 256u);
  for (const auto& [p, n] : hits) EXPECT_GT(n, 40) << "partition " << p;
}

TEST(SlotPlacement, RefusesPartitionCountsThatDoNotDivideTheSlots) {
  for (uint32_t q : {3u, 100u, 32768u}) {
    Result<core::Ring> r = core::Ring::Create(q, {"a"}, 1, core::Placement::kSlots);
    ASSERT_FALSE(r.ok()) << q;
    EXPECT_NE(r.status().message().find("does not divide the 16384 hash slots"), std::string::npos);
    EXPECT_TRUE(core::Ring::Create(q, {"a"}, 1, core::Placement::kHash).ok()) << q;
  }
  Result<Config> c = ParseConfigText("[cluster]\npartitions = 100\n", "t.toml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("16384"), std::string::npos) << c.status().message();
  // XXH3 placement (data format 1) takes any Q.
  c = ParseConfigText("[cluster]\npartitions = 100\n[storage]\ndata_format = 1\n", "t.toml", {});
  EXPECT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(ParseConfigText("", "t.toml", {}).value().data_format, 2);
}

TEST(DataFormat, ParsesKnownFormatsAndRefusesOthers) {
  EXPECT_EQ(server::ParseDataFormat(std::nullopt).value(), 1u);  // from before versions
  EXPECT_EQ(server::ParseDataFormat(std::string("1")).value(), 1u);
  EXPECT_EQ(server::ParseDataFormat(std::string("2")).value(), 2u);
  Result<uint32_t> newer = server::ParseDataFormat(std::string("3"));
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.status().message().find("newer than this build knows"), std::string::npos);
  for (const char* bad : {"", "x", "2a", "0", "-1"}) {
    EXPECT_FALSE(server::ParseDataFormat(std::string(bad)).ok()) << bad;
  }
  EXPECT_EQ(server::PlacementOfFormat(1), core::Placement::kHash);
  EXPECT_EQ(server::PlacementOfFormat(2), core::Placement::kSlots);
}

// A node refuses to open a data directory that records a format newer than it knows.
TEST(DataFormat, NodeRefusesANewerDataDirectory) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("itsuka-format-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    storage::RocksOptions o;
    o.path = dir.string();
    auto engine = storage::OpenRocksEngine(o);
    ASSERT_TRUE(engine.ok()) << engine.status().message();
    WriteBatch b;
    b.Put(Column::kMeta, "node_id", "n1");
    b.Put(Column::kMeta, "actor", "n1.0000000000000001");
    b.Put(Column::kMeta, server::kDataFormatKey, "3");
    ASSERT_TRUE((*engine)->Write(b, true).ok());
  }
  Config c;
  c.node_id = "n1";
  c.data_dir = dir.string();
  c.insecure_no_auth = 1;
  c.port = 0;
  Result<std::unique_ptr<server::Node>> node = server::Node::Create(c);
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("data format 3 is newer than this build knows"),
            std::string::npos)
      << node.status().message();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace itsuka
