#include "server/store.h"

#include <gtest/gtest.h>

#include "storage/mem_engine.h"
#include "wire/object_codec.h"
#include "wire/paxos_codec.h"

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

TEST(Store, PoisonedObjectOnDiskIsSalvagedAndRewritten) {
  // Stored by today's main from a forwarded put with a negative expiry: it used to make
  // every read of the key fail (-UNAVAILABLE with R all) and every repair of it fail.
  storage::MemEngine engine;
  core::Object o = core::ApplyWrite(Obj("good"), core::VClock(), "n2",
                                    core::NewVersion{false, "bad", 0, 1}, core::ObjectLimits{})
                       .value();
  o.siblings[1].expire_at_ms = -1;
  WriteBatch b;
  b.Put(Column::kData, "k", wire::EncodeObject(o));
  ASSERT_TRUE(engine.Write(b, true).ok());
  Store store(engine, /*sync=*/true);
  ASSERT_TRUE(store.EnableMerkle(16).ok());  // indexing it does not fail either
  Result<core::Object> r = store.Read("k");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->siblings.size(), 1u);
  EXPECT_EQ(r->siblings[0].value, "good");
  EXPECT_EQ(store.salvaged_objects(), 1u);
  ASSERT_TRUE(store.Commit().ok());  // the salvaged object replaces the stored one
  std::string raw;
  ASSERT_TRUE(engine.Get(Column::kData, "k", &raw).ok());
  EXPECT_TRUE(wire::DecodeObject(raw).ok());
}

TEST(Store, PoisonedPaxosValueOnDiskIsSalvaged) {
  storage::MemEngine engine;
  core::Object o = Obj("v");
  o.siblings[0].expire_at_ms = -1;
  core::AcceptorState state;
  state.promised = core::Ballot{2, "n1.a"};
  state.accepted = core::Ballot{2, "n1.a"};
  state.value = o;
  WriteBatch b;
  b.Put(Column::kMeta, "paxos/k", wire::EncodeAcceptorState(state));
  ASSERT_TRUE(engine.Write(b, true).ok());
  Store store(engine, /*sync=*/true);
  Result<core::AcceptorState> r = store.ReadPaxos("k");
  ASSERT_TRUE(r.ok()) << r.status().ToString();  // used to fail every CONSISTENT op on k
  EXPECT_TRUE(r->value.siblings.empty());
  EXPECT_EQ(r->promised, state.promised);
  EXPECT_EQ(store.salvaged_objects(), 1u);
}

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

TEST(Store, CorruptStoredBytesAreCountedAndServedAsMissingNeverAsAValue) {
  storage::MemEngine engine;
  Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(16).ok());
  WriteBatch b;
  b.Put(Column::kData, "k", "\xc1garbage");
  ASSERT_TRUE(engine.Write(b, false).ok());
  EXPECT_TRUE(store.Authoritative("k"));
  Result<core::Object> r = store.Read("k");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(store.corruptions(), 1u);
  EXPECT_NE(store.last_corruption().find("partition " + std::to_string(store.PartitionOfKey("k"))),
            std::string::npos);
  // The key's partition is suspect; others are not.
  EXPECT_FALSE(store.Authoritative("k"));
  EXPECT_EQ(store.suspect().size(), 1u);
  // The broken copy is deleted with the next commit (and the suspect mark saved).
  ASSERT_TRUE(store.HasStaged());
  ASSERT_TRUE(store.Commit().ok());
  std::string v;
  EXPECT_TRUE(engine.Get(Column::kData, "k", &v).IsNotFound());
  EXPECT_TRUE(store.Read("k")->empty());
  EXPECT_EQ(store.corruptions(), 1u);  // counted once, not on every read
}

// An engine whose data blocks fail their checksum for one key, as RocksDB reports.
class BadBlockEngine : public storage::MemEngine {
 public:
  Status Get(Column column, std::string_view key, std::string* value) override {
    if (column == Column::kData && key == "bad" && !healed) {
      return Status::Corruption("block checksum mismatch in /data/000012.sst");
    }
    return MemEngine::Get(column, key, value);
  }
  Status Write(const WriteBatch& batch, bool sync) override {
    for (const WriteBatch::Op& op : batch.ops()) {
      if (op.column == Column::kData && op.key == "bad") healed = true;  // overwritten
    }
    return MemEngine::Write(batch, sync);
  }
  bool healed = false;
};

TEST(Store, AChecksumFailureMakesThePartitionSuspectUntilARepairAndSurvivesARestart) {
  BadBlockEngine engine;
  uint32_t p = 0;
  {
    // No object cache: it would serve the committed copy of "bad" without reading the
    // block that went bad (see ACachedKeyIsServedFromMemory... below).
    Store store(engine, false, /*object_cache_bytes=*/0);
    ASSERT_TRUE(store.EnableMerkle(16).ok());
    store.Stage("bad", Obj("1"));
    ASSERT_TRUE(store.Commit().ok());
    engine.healed = false;  // the block holding it goes bad
    EXPECT_TRUE(store.Read("bad")->empty());
    EXPECT_EQ(store.corruptions(), 1u);
    EXPECT_NE(store.last_corruption().find("000012.sst"), std::string::npos);
    p = store.PartitionOfKey("bad");
    ASSERT_TRUE(store.Commit().ok());
  }
  {
    Store store(engine, false);  // a restart keeps the mark
    ASSERT_TRUE(store.EnableMerkle(16).ok());
    EXPECT_FALSE(store.Authoritative("bad"));
    // The anti-entropy tree no longer lists the lost key, so a repair sees it missing.
    EXPECT_EQ(store.merkle_keys(), 0u);
    store.ClearSuspect({p});
    EXPECT_TRUE(store.Authoritative("bad"));
    ASSERT_TRUE(store.Commit().ok());
  }
  Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(16).ok());
  EXPECT_TRUE(store.Authoritative("bad"));
}

TEST(Store, AnUndecodableObjectFoundWhileIndexingIsDroppedNotFatal) {
  storage::MemEngine engine;
  WriteBatch b;
  b.Put(Column::kData, "k", "\xc1garbage");
  ASSERT_TRUE(engine.Write(b, false).ok());
  Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(16).ok());  // the node still starts
  EXPECT_EQ(store.corruptions(), 1u);
  EXPECT_FALSE(store.Authoritative("k"));
  EXPECT_TRUE(store.Read("k")->empty());
}

TEST(Store, MarkAllSuspectCoversEveryPartitionAndIsSavedAtOnce) {
  storage::MemEngine engine;
  {
    Store store(engine, false);
    ASSERT_TRUE(store.EnableMerkle(8).ok());
    ASSERT_TRUE(store.MarkAllSuspect().ok());
    EXPECT_EQ(store.suspect().size(), 8u);
    EXPECT_FALSE(store.HasStaged());
  }
  Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(8).ok());
  EXPECT_EQ(store.suspect().size(), 8u);
  EXPECT_FALSE(store.Authoritative("anything"));
}

// Counts data lookups; fails writes while `fail` is set.
class CountingEngine : public storage::MemEngine {
 public:
  Status Get(Column column, std::string_view key, std::string* value) override {
    if (column == Column::kData) ++data_gets;
    return MemEngine::Get(column, key, value);
  }
  Status Write(const WriteBatch& batch, bool sync) override {
    if (fail) return Status::IOError("disk on fire");
    return MemEngine::Write(batch, sync);
  }
  int data_gets = 0;
  bool fail = false;
};

TEST(Store, ACommittedObjectIsReadBackFromTheCacheWithoutALookup) {
  CountingEngine engine;
  Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(16).ok());
  store.Stage("k", Obj("1"));
  ASSERT_TRUE(store.Commit().ok());
  const int gets = engine.data_gets;
  EXPECT_EQ(store.Read("k")->siblings[0].value, "1");
  EXPECT_EQ(store.Read("absent-but-read-twice")->siblings.size(), 0u);
  EXPECT_EQ(store.Read("absent-but-read-twice")->siblings.size(), 0u);  // a cached absence
  EXPECT_EQ(engine.data_gets, gets + 1);
  EXPECT_EQ(store.object_cache().hits(), 2u);
  EXPECT_GT(store.object_cache().bytes(), 0u);
  EXPECT_LE(store.object_cache().bytes(), store.object_cache().max_bytes());
}

TEST(Store, AFailedCommitLeavesNoStagedStateInTheCache) {
  CountingEngine engine;
  Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(16).ok());
  store.Stage("k", Obj("old"));
  ASSERT_TRUE(store.Commit().ok());
  ASSERT_EQ(store.Read("k")->siblings[0].value, "old");  // cached
  engine.fail = true;
  store.Stage("k", Obj("new"));
  store.Stage("fresh", Obj("x"));
  EXPECT_FALSE(store.Commit().ok());
  engine.fail = false;
  EXPECT_EQ(store.Read("k")->siblings[0].value, "old");  // what the engine holds
  EXPECT_TRUE(store.Read("fresh")->empty());
  EXPECT_EQ(store.failed_commits(), 1u);
}

TEST(Store, TheCacheDoesNotOutliveARestartAndKeepsTheTreeRight) {
  CountingEngine engine;
  uint64_t root = 0;
  {
    Store store(engine, false);
    ASSERT_TRUE(store.EnableMerkle(4).ok());
    for (int round = 0; round < 3; ++round) {
      for (int i = 0; i < 50; ++i) {
        const std::string key = "k" + std::to_string(i);
        core::Object base = store.Read(key).value();  // from the cache after round 0
        store.Stage(key, core::ApplyWrite(base, base.clock, "n1",
                                          core::NewVersion{false, std::to_string(round), 0, 0},
                                          core::ObjectLimits{})
                             .value());
      }
      ASSERT_TRUE(store.Commit().ok());
    }
    root = store.Tree(store.PartitionOfKey("k7"))->root();
    EXPECT_EQ(store.merkle_keys(), 50u);
  }
  // The trees as rebuilt from the index at start match those kept up by the commits
  // that took their previous index entries from the cache.
  Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(4).ok());
  EXPECT_EQ(store.object_cache().entries(), 0u);
  EXPECT_EQ(store.Tree(store.PartitionOfKey("k7"))->root(), root);
  EXPECT_EQ(store.merkle_keys(), 50u);
  EXPECT_EQ(store.Read("k7")->siblings[0].value, "2");
}

TEST(Store, ACachedKeyIsServedFromMemoryUntilEvictedEvenIfItsBlockGoesBad) {
  // The documented trade: the committed copy in the cache is served; the bad block is
  // found when the key is next read from the engine (here: with no cache, as after a
  // restart or an eviction).
  BadBlockEngine engine;
  Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(16).ok());
  store.Stage("bad", Obj("1"));
  ASSERT_TRUE(store.Commit().ok());
  engine.healed = false;
  EXPECT_EQ(store.Read("bad")->siblings[0].value, "1");
  EXPECT_EQ(store.corruptions(), 0u);
  Store restarted(engine, false);
  ASSERT_TRUE(restarted.EnableMerkle(16).ok());
  EXPECT_TRUE(restarted.Read("bad")->empty());
  EXPECT_EQ(restarted.corruptions(), 1u);
}

}  // namespace
}  // namespace itsuka::server
