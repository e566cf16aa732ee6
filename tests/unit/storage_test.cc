#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
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

// ---- Corruption -------------------------------------------------------------------

// Writes `n` keys one batch each (so the log holds n records) and closes the database.
// The write buffer is large enough that nothing is flushed: the log holds them all.
void WriteKeys(const std::string& dir, int n) {
  auto e = OpenRocks(dir);
  ASSERT_NE(e, nullptr);
  for (int i = 0; i < n; ++i) {
    WriteBatch b;
    b.Put(Column::kData, "k" + std::to_string(i), std::string(100, 'v'));
    ASSERT_TRUE(e->Write(b, false).ok());
  }
}

std::string BiggestWal(const std::string& dir) {
  std::string best;
  uintmax_t size = 0;
  for (const std::string& f : ListWalFiles(dir)) {
    if (std::filesystem::file_size(f) >= size) {
      size = std::filesystem::file_size(f);
      best = f;
    }
  }
  return best;
}

void FlipBytes(const std::string& file, uintmax_t at, int count) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  for (int i = 0; i < count; ++i) {
    f.seekg(static_cast<std::streamoff>(at + i));
    char c = 0;
    f.read(&c, 1);
    f.seekp(static_cast<std::streamoff>(at + i));
    c = static_cast<char>(c ^ 0x5a);
    f.write(&c, 1);
  }
}

int CountKeys(Engine& e, int n) {
  int found = 0;
  std::string v;
  for (int i = 0; i < n; ++i) found += e.Get(Column::kData, "k" + std::to_string(i), &v).ok();
  return found;
}

TEST(RocksEngine, CorruptionInTheMiddleOfTheWalFailsOpenNamingTheFile) {
  std::string dir = TempDir("walmid");
  WriteKeys(dir, 1000);
  const std::string wal = BiggestWal(dir);
  ASSERT_FALSE(wal.empty());
  ASSERT_GT(std::filesystem::file_size(wal), 100000u);  // the log holds the keys
  FlipBytes(wal, std::filesystem::file_size(wal) / 2, 4);
  RocksOptions o;
  o.path = dir;
  auto strict = OpenRocksEngine(o);
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().code(), Status::Code::kCorruption);
  EXPECT_NE(strict.status().message().find(wal), std::string::npos) << strict.status().message();
  EXPECT_NE(strict.status().message().find("storage.allow_wal_corruption"), std::string::npos);
  // Still refused on a second try: nothing was "repaired" by the failed open.
  ASSERT_FALSE(OpenRocksEngine(o).ok());
  // The operator's override starts it with what precedes the bad record, and says so.
  o.allow_wal_corruption = true;
  RocksOpenInfo info;
  auto lenient = OpenRocksEngine(o, &info);
  ASSERT_TRUE(lenient.ok()) << lenient.status().ToString();
  EXPECT_TRUE(info.wal_corruption_tolerated);
  EXPECT_NE(info.wal_error.find(wal), std::string::npos);
  const int found = CountKeys(**lenient, 1000);
  EXPECT_GT(found, 100);
  EXPECT_LT(found, 1000);
  lenient->reset();
  std::filesystem::remove_all(dir);
}

TEST(RocksEngine, AnIncompleteLastWalRecordIsACrashNotCorruption) {
  std::string dir = TempDir("waltail");
  WriteKeys(dir, 1000);
  const std::string wal = BiggestWal(dir);
  ASSERT_FALSE(wal.empty());
  // A crash in the middle of the last append: the record is cut short.
  std::filesystem::resize_file(wal, std::filesystem::file_size(wal) - 20);
  RocksOptions o;
  o.path = dir;
  RocksOpenInfo info;
  auto e = OpenRocksEngine(o, &info);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_FALSE(info.wal_corruption_tolerated);
  EXPECT_EQ(CountKeys(**e, 1000), 999);  // only the torn record is gone
  e->reset();
  std::filesystem::remove_all(dir);
}

TEST(RocksEngine, ACorruptedSstBlockIsReportedAsCorruptionNotAbsence) {
  std::string dir = TempDir("sst");
  {
    RocksOptions o;
    o.path = dir;
    o.write_buffer_mb = 1;  // small memtables: the keys reach SST files
    auto e = OpenRocksEngine(o);
    ASSERT_TRUE(e.ok());
    for (int i = 0; i < 20000; ++i) {
      WriteBatch b;
      b.Put(Column::kData, "k" + std::to_string(i), std::string(100, 'v'));
      ASSERT_TRUE((*e)->Write(b, false).ok());
    }
  }
  std::string sst;
  uintmax_t size = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() == ".sst" && f.file_size() > size) {
      size = f.file_size();
      sst = f.path().string();
    }
  }
  ASSERT_FALSE(sst.empty());
  FlipBytes(sst, size / 3, 1);  // inside a data block (index and footer are at the end)
  RocksOptions o;
  o.path = dir;
  auto e = OpenRocksEngine(o);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  int corrupt = 0, found = 0;
  std::string v, message;
  for (int i = 0; i < 20000; ++i) {
    Status st = (*e)->Get(Column::kData, "k" + std::to_string(i), &v);
    if (st.code() == Status::Code::kCorruption) {
      ++corrupt;
      message = st.message();
    }
    found += st.ok();
  }
  EXPECT_GT(corrupt, 0);
  EXPECT_EQ(found + corrupt, 20000);  // none reads as absent
  EXPECT_NE(message.find(".sst"), std::string::npos) << message;
  e->reset();
  std::filesystem::remove_all(dir);
}

TEST(RocksEngine, WritesAreRefusedNotAppliedBelowTheFreeSpaceReserve) {
  std::string dir = TempDir("reserve");
  {
    auto e = OpenRocks(dir);
    WriteBatch b;
    b.Put(Column::kData, "kept", "1");
    ASSERT_TRUE(e->Write(b, true).ok());
  }
  RocksOptions o;
  o.path = dir;
  o.min_free_bytes = uint64_t{1} << 62;  // more than any disk has free
  auto e = OpenRocksEngine(o);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  WriteBatch b;
  b.Put(Column::kData, "refused", "2");
  Status st = (*e)->Write(b, false);
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_NE(st.message().find("no space left"), std::string::npos) << st.message();
  std::string v;
  EXPECT_TRUE((*e)->Get(Column::kData, "refused", &v).IsNotFound());  // not applied
  ASSERT_TRUE((*e)->Get(Column::kData, "kept", &v).ok());            // reads go on
  EXPECT_EQ(v, "1");
  e->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace itsuka::storage
