#include "server/store.h"

#include <gtest/gtest.h>

#include "storage/mem_engine.h"
#include "wire/object_codec.h"

namespace itsuka::server {
namespace {

core::Object Obj(const std::string& v) {
  return core::ApplyWrite(core::Object(), core::VClock(), "n1", core::NewVersion{false, v, 0, 0},
                          core::ObjectLimits{})
      .value();
}

// An engine whose writes fail, as a full or broken disk would make them.
class FailingEngine : public storage::MemEngine {
 public:
  Status Write(const WriteBatch&, bool) override { return Status::IOError("disk on fire"); }
};

TEST(Store, StagedWritesAreReadableAndCommittedInOneBatch) {
  storage::MemEngine engine;
  Store store(engine, /*sync=*/true);
  EXPECT_TRUE(store.Read("a")->empty());
  store.Stage("a", Obj("1"));
  store.Stage("b", Obj("2"));
  store.Stage("a", Obj("3"));  // coalesces with the earlier staged write
  EXPECT_EQ(store.Read("a")->siblings[0].value, "3");
  std::string raw;
  EXPECT_TRUE(engine.Get(Column::kData, "a", &raw).IsNotFound());  // not yet durable
  ASSERT_TRUE(store.Commit().ok());
  EXPECT_FALSE(store.HasStaged());
  ASSERT_TRUE(engine.Get(Column::kData, "a", &raw).ok());
  EXPECT_EQ(wire::DecodeObject(raw)->siblings[0].value, "3");
  EXPECT_EQ(engine.Stats().writes, 1u);
  EXPECT_EQ(engine.Stats().synced_writes, 1u);
  EXPECT_EQ(store.committed_keys(), 2u);
}

TEST(Store, FailedCommitDiscardsStagedWrites) {
  FailingEngine engine;
  Store store(engine, false);
  store.Stage("a", Obj("1"));
  Status st = store.Commit();
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_FALSE(store.HasStaged());
  EXPECT_TRUE(store.Read("a")->empty());
  EXPECT_EQ(store.failed_commits(), 1u);
}

TEST(Store, CorruptStoredBytesAreReportedNotServed) {
  storage::MemEngine engine;
  WriteBatch b;
  b.Put(Column::kData, "k", "\xc1garbage");
  ASSERT_TRUE(engine.Write(b, false).ok());
  Store store(engine, false);
  Result<core::Object> r = store.Read("k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
}

}  // namespace
}  // namespace itsuka::server
