#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "itsuka/engine.h"
#include "storage/mem_engine.h"
#include "storage/rocksdb_engine.h"

namespace itsuka::storage {
namespace {

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("itsuka-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir.string();
}

std::unique_ptr<Engine> OpenRocks(const std::string& path) {
  RocksOptions o;
  o.path = path;
  o.block_cache_mb = 8;
  o.write_buffer_mb = 4;
  auto r = OpenRocksEngine(o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

class EngineTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "mem") {
      engine_ = std::make_unique<MemEngine>();
    } else {
      dir_ = TempDir("engine");
      engine_ = OpenRocks(dir_);
      ASSERT_NE(engine_, nullptr);
    }
  }
  void TearDown() override {
    engine_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Engine> engine_;
  std::string dir_;
};

TEST_P(EngineTest, PutGetDeleteInBatches) {
  std::string v;
  EXPECT_TRUE(engine_->Get(Column::kData, "a", &v).IsNotFound());
  WriteBatch b;
  b.Put(Column::kData, "a", "1");
  b.Put(Column::kData, std::string("b\0x", 3), std::string("\0", 1));
  b.Put(Column::kMeta, "a", "meta");
  ASSERT_TRUE(engine_->Write(b, false).ok());
  ASSERT_TRUE(engine_->Get(Column::kData, "a", &v).ok());
  EXPECT_EQ(v, "1");
  ASSERT_TRUE(engine_->Get(Column::kMeta, "a", &v).ok());
  EXPECT_EQ(v, "meta");  // columns are separate
  EXPECT_TRUE(engine_->Get(Column::kHints, "a", &v).IsNotFound());
  WriteBatch d;
  d.Delete(Column::kData, "a");
  d.Put(Column::kData, "c", "3");
  ASSERT_TRUE(engine_->Write(d, true).ok());
  EXPECT_TRUE(engine_->Get(Column::kData, "a", &v).IsNotFound());
  EXPECT_EQ(engine_->Stats().writes, 2u);
  EXPECT_EQ(engine_->Stats().synced_writes, 1u);
}

TEST_P(EngineTest, IteratesInKeyOrderOverASnapshot) {
  WriteBatch b;
  for (std::string k : {"d", "a", "c", "b"}) b.Put(Column::kData, k, "v" + k);
  ASSERT_TRUE(engine_->Write(b, false).ok());
  auto it = engine_->NewIterator(Column::kData);
  WriteBatch later;
  later.Put(Column::kData, "bb", "x");
  ASSERT_TRUE(engine_->Write(later, false).ok());
  std::string keys;
  for (it->Seek("b"); it->Valid(); it->Next()) keys += std::string(it->key()) + ",";
  EXPECT_EQ(keys, "b,c,d,");
  EXPECT_TRUE(it->status().ok());
}

INSTANTIATE_TEST_SUITE_P(Engines, EngineTest, ::testing::Values("mem", "rocksdb"));

TEST(RocksEngine, DataSurvivesReopen) {
  std::string dir = TempDir("reopen");
  {
    auto e = OpenRocks(dir);
    WriteBatch b;
    for (int i = 0; i < 1000; ++i) b.Put(Column::kData, "k" + std::to_string(i), std::to_string(i));
    ASSERT_TRUE(e->Write(b, false).ok());
  }
  auto e = OpenRocks(dir);
  std::string v;
  for (int i = 0; i < 1000; i += 97) {
    ASSERT_TRUE(e->Get(Column::kData, "k" + std::to_string(i), &v).ok());
    EXPECT_EQ(v, std::to_string(i));
  }
  e.reset();
  std::filesystem::remove_all(dir);
}

TEST(RocksEngine, SecondOpenOfTheSameDirectoryFailsClearly) {
  std::string dir = TempDir("lock");
  auto first = OpenRocks(dir);
  RocksOptions o;
  o.path = dir;
  auto second = OpenRocksEngine(o);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(dir), std::string::npos);
  first.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace itsuka::storage
