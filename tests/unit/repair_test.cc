// Anti-entropy end to end over real Stores (in-memory engines) and the real driver and
// replica side, with messages pumped by hand: replicas converge to the merge of what
// they held, only differing keys move, tombstones are purged only when held by all.
#include "core/repair.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "common/hash.h"
#include "server/store.h"
#include "storage/mem_engine.h"
#include "wire/peer_codec.h"

namespace itsuka {
namespace {

using core::Object;

constexpr uint32_t kPartitions = 8;

struct Replica {
  storage::MemEngine engine;
  std::unique_ptr<server::Store> store;
};

class RepairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"n1", "n2", "n3"}) {
      auto& r = nodes_[name];
      r.store = std::make_unique<server::Store>(r.engine, false);
      ASSERT_TRUE(r.store->EnableMerkle(kPartitions).ok());
    }
  }

  server::Store& S(const std::string& n) { return *nodes_.at(n).store; }

  void Write(const std::string& node, const std::string& key, const std::string& value,
             bool tombstone = false, int64_t at_ms = 1000) {
    Object cur = S(node).Read(key).value();
    Object next = core::ApplyWrite(cur, cur.clock, node, core::NewVersion{tombstone, value, 0, at_ms},
                                   core::ObjectLimits{})
                      .value();
    S(node).Stage(key, next);
    ASSERT_TRUE(S(node).Commit().ok());
  }

  void Copy(const std::string& from, const std::string& to, const std::string& key) {
    Object merged = core::Merge(S(to).Read(key).value(), S(from).Read(key).value());
    S(to).Stage(key, merged);
    ASSERT_TRUE(S(to).Commit().ok());
  }

  core::RepairDriver MakeDriver(core::RepairOptions o = {}) {
    core::RepairDriver d("n1", o);
    d.SetRing(core::Ring::Create(kPartitions, {"n1", "n2", "n3"}, 1).value());
    return d;
  }

  core::RepairProgress AllPartitions(bool dry_run = false) {
    core::RepairProgress p;
    p.job.id = 1;
    p.job.dry_run = dry_run;
    for (uint32_t i = 0; i < kPartitions; ++i) p.job.partitions.push_back(i);
    return p;
  }

  // Delivers the driver's requests (through the codec, as the wire would) until it
  // finishes; `drop` names a node whose messages are lost. Time advances 10 ms a round.
  void Run(core::RepairDriver& d, const std::string& drop = "") {
    for (int round = 0; round < 200000 && d.running(); ++round) {
      now_ += 10;
      for (auto& [to, msg] : d.TakeSends()) {
        if (to == drop) continue;
        auto decoded = wire::DecodePeerMessage(wire::EncodePeerMessage(msg));
        ASSERT_TRUE(decoded.ok());
        core::PeerMessage reply = core::AnswerRepairRequest(*decoded, S(to), S(to), limits_,
                                                            wall_, grace_ms_);
        ASSERT_TRUE(S(to).Commit().ok());
        d.OnReply(to, *wire::DecodePeerMessage(wire::EncodePeerMessage(reply)), now_);
      }
      d.Tick(now_);
    }
    ASSERT_FALSE(d.running()) << "the repair did not finish";
  }

  std::set<std::string> AllKeys() {
    std::set<std::string> keys;
    for (auto& [n, r] : nodes_) {
      auto it = r.engine.NewIterator(Column::kData);
      for (it->Seek(""); it->Valid(); it->Next()) keys.insert(std::string(it->key()));
    }
    return keys;
  }

  void ExpectConverged() {
    for (uint32_t p = 0; p < kPartitions; ++p) {
      auto root = [&](const std::string& n) { return S(n).Tree(p) ? S(n).Tree(p)->root() : 0; };
      EXPECT_EQ(root("n1"), root("n2")) << "partition " << p;
      EXPECT_EQ(root("n1"), root("n3")) << "partition " << p;
    }
    for (const std::string& k : AllKeys()) {
      EXPECT_EQ(S("n1").Read(k).value(), S("n2").Read(k).value()) << k;
      EXPECT_EQ(S("n1").Read(k).value(), S("n3").Read(k).value()) << k;
    }
  }

  std::map<std::string, Replica> nodes_;
  core::RepairLimits limits_;
  int64_t now_ = 0;
  int64_t wall_ = 1'000'000;
  int64_t grace_ms_ = 0;
};

TEST_F(RepairTest, RandomDivergenceConvergesToTheMergeAndMovesOnlyDifferingKeys) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 600; ++i) {
    const std::string k = "key" + std::to_string(i);
    Write("n1", k, "v" + std::to_string(i));
    Copy("n1", "n2", k);
    Copy("n1", "n3", k);
  }
  // Divergence: writes that reached one replica only, concurrent writes on two
  // (siblings), keys only one replica has.
  std::map<std::string, Object> expected;
  std::set<std::string> touched;
  for (int i = 0; i < 40; ++i) {
    const std::string k = "key" + std::to_string(rng() % 700);
    const std::string node = "n" + std::to_string(1 + rng() % 3);
    Write(node, k, "x" + std::to_string(i));
    touched.insert(k);
  }
  for (const std::string& k : AllKeys()) {
    expected[k] = core::Merge(core::Merge(S("n1").Read(k).value(), S("n2").Read(k).value()),
                              S("n3").Read(k).value());
  }
  core::RepairDriver dry = MakeDriver();
  ASSERT_TRUE(dry.Start(AllPartitions(true), now_).ok());
  Run(dry);
  EXPECT_GT(dry.progress().totals.keys_differing, 0u);
  EXPECT_EQ(dry.progress().totals.keys_moved, 0u);
  EXPECT_EQ(dry.progress().totals.partitions_done, kPartitions);

  core::RepairDriver d = MakeDriver();
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  Run(d);
  const core::RepairTotals& t = d.progress().totals;
  EXPECT_EQ(t.partitions_done, kPartitions);
  EXPECT_EQ(t.partitions_failed, 0u);
  ExpectConverged();
  for (const auto& [k, obj] : expected) EXPECT_EQ(S("n2").Read(k).value(), obj) << k;
  // Each differing key moves at most once per direction per pair (3 pair syncs).
  EXPECT_GT(t.keys_moved, 0u);
  EXPECT_LE(t.keys_moved, touched.size() * 6);

  // A second run finds nothing to do.
  core::RepairDriver again = MakeDriver();
  ASSERT_TRUE(again.Start(AllPartitions(), now_).ok());
  Run(again);
  EXPECT_EQ(again.progress().totals.keys_differing, 0u);
  EXPECT_EQ(again.progress().totals.keys_moved, 0u);
}

TEST_F(RepairTest, EmptyReplicaIsRefilledWithSmallReplyBounds) {
  limits_.max_entries = 3;  // forces leaf paging
  limits_.max_bytes = 1;    // one object per fetch reply
  for (int i = 0; i < 300; ++i) {
    const std::string k = "k" + std::to_string(i);
    Write("n1", k, std::string(50, 'a'));
    Copy("n1", "n2", k);
  }
  core::RepairOptions o;
  o.keys_per_fetch = 7;
  o.leaves_per_request = 5;
  core::RepairDriver d = MakeDriver(o);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  Run(d);
  ExpectConverged();
  EXPECT_EQ(S("n3").merkle_keys(), 300u);
  EXPECT_EQ(d.progress().totals.keys_moved, 300u);  // each key moved once, to n3
}

TEST_F(RepairTest, WritesOneReplicaMissedMoveOnceEach) {
  for (int i = 0; i < 500; ++i) {
    const std::string k = "k" + std::to_string(i);
    Write("n1", k, "v");
    Copy("n1", "n2", k);
    Copy("n1", "n3", k);
  }
  for (int i = 0; i < 10; ++i) {  // newer versions n3 missed
    const std::string k = "k" + std::to_string(i * 37);
    Write("n1", k, "newer");
    Copy("n1", "n2", k);
  }
  core::RepairDriver dry = MakeDriver();
  ASSERT_TRUE(dry.Start(AllPartitions(true), now_).ok());
  Run(dry);
  EXPECT_EQ(dry.progress().totals.keys_differing, 10u);  // each once, whatever the pairs
  core::RepairDriver d = MakeDriver();
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  Run(d);
  ExpectConverged();
  EXPECT_EQ(d.progress().totals.keys_differing, 10u);
  EXPECT_EQ(d.progress().totals.keys_moved, 10u);  // to n3 only; n1's copy already was the merge
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(S("n3").Read("k" + std::to_string(i * 37)).value().siblings.at(0).value, "newer");
  }
}

TEST_F(RepairTest, ThrottleBoundsKeysPerSecond) {
  for (int i = 0; i < 200; ++i) Write("n1", "k" + std::to_string(i), "v");
  core::RepairOptions o;
  o.keys_per_s = 100;
  core::RepairDriver d = MakeDriver(o);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  const int64_t start = now_;
  Run(d);
  ExpectConverged();
  // 400 keys moved (to n2 and n3) at 100 keys/s with a burst of 100: at least 3 s of
  // simulated time.
  EXPECT_EQ(d.progress().totals.keys_moved, 400u);
  EXPECT_GE(now_ - start, 3000);
}

TEST_F(RepairTest, UnansweredReplicaFailsItsPartitionsAndTheRunFinishes) {
  for (int i = 0; i < 50; ++i) Write("n1", "k" + std::to_string(i), "v");
  core::RepairOptions o;
  o.request_timeout_ms = 100;
  o.max_attempts = 2;
  core::RepairDriver d = MakeDriver(o);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  Run(d, /*drop=*/"n3");
  EXPECT_EQ(d.progress().totals.partitions_failed, kPartitions);
  EXPECT_EQ(d.progress().failed.size(), kPartitions);
  EXPECT_FALSE(d.last_error().empty());
}

TEST_F(RepairTest, TombstonesArePurgedOnlyWhenEveryReplicaHoldsThemAndAfterTheGrace) {
  for (const char* k : {"gone", "young", "partial"}) {
    Write("n1", k, "live", false, 1000);
    Copy("n1", "n2", k);
    Copy("n1", "n3", k);
  }
  Write("n1", "gone", "", true, 2000);
  Copy("n1", "n2", "gone");
  Copy("n1", "n3", "gone");
  Write("n1", "young", "", true, wall_ - 10);  // within the grace
  Copy("n1", "n2", "young");
  Copy("n1", "n3", "young");
  Write("n1", "partial", "", true, 2000);      // n3 still holds the live value
  Copy("n1", "n2", "partial");

  // The replica side refuses to confirm a tombstone whose digest it does not hold.
  const uint64_t d_partial = core::ObjectDigest(S("n1").Read("partial").value());
  core::PeerMessage check = core::TombstoneRequest{
      9, S("n1").PartitionOfKey("partial"),
      core::TombstoneRequest::Mode::kCheck, 0, {{"partial", d_partial}}, ""};
  auto reply = std::get<core::TombstoneReply>(
      core::AnswerRepairRequest(check, S("n3"), S("n3"), limits_, wall_, 0));
  EXPECT_TRUE(reply.ok);
  EXPECT_TRUE(reply.entries.empty());

  core::RepairOptions o;
  o.tombstone_grace_ms = 1000;
  grace_ms_ = 1000;
  core::RepairDriver d = MakeDriver(o);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  Run(d);
  // "gone" was held by all: purged everywhere. "partial" reached n3 during this run's
  // sync, so every replica held it before the purge step and it is purged too. "young"
  // is within the grace and stays.
  for (const char* n : {"n1", "n2", "n3"}) {
    EXPECT_TRUE(S(n).Read("gone").value().empty()) << n;
    EXPECT_TRUE(S(n).Read("partial").value().empty()) << n;
    EXPECT_FALSE(S(n).Read("young").value().empty()) << n;
    EXPECT_TRUE(core::LiveSiblings(S(n).Read("young").value(), wall_).empty()) << n;
  }
  EXPECT_EQ(d.progress().totals.tombstones_purged, 2u);
  ExpectConverged();
}

// A CONSISTENT write leaves a copy of the agreed object in every primary's Paxos state.
// When an eventual DEL superseded it and repair purges the tombstone, that copy must go
// too, or the next CONSISTENT round would adopt it and bring the key back. A value the
// tombstone does not cover (accepted, never committed) keeps the tombstone.
TEST_F(RepairTest, PurgeDropsAPaxosCopyTheTombstoneCovers) {
  for (const char* k : {"agreed", "uncovered"}) Write("n1", k, "v1", false, 1000);
  const Object agreed = S("n1").Read("agreed").value();
  Object other;  // a value with a dot no replica's data has seen
  other = core::ApplyWrite(other, other.clock, "n9", core::NewVersion{false, "v9", 0, 1000},
                           core::ObjectLimits{})
              .value();
  const core::Ballot b{7, "n1~strong"};
  for (const char* n : {"n1", "n2", "n3"}) {
    S(n).StagePaxos("agreed", core::AcceptorState{b, b, agreed});
    S(n).StagePaxos("uncovered", core::AcceptorState{b, b, other});
    ASSERT_TRUE(S(n).Commit().ok());
  }
  for (const char* k : {"agreed", "uncovered"}) {
    Write("n1", k, "", true, 2000);
    Copy("n1", "n2", k);
    Copy("n1", "n3", k);
  }
  core::RepairOptions o;
  o.tombstone_grace_ms = 1000;
  grace_ms_ = 1000;
  core::RepairDriver d = MakeDriver(o);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  Run(d);
  for (const char* n : {"n1", "n2", "n3"}) {
    EXPECT_TRUE(S(n).Read("agreed").value().empty()) << n;
    core::AcceptorState st = S(n).ReadPaxos("agreed").value();
    EXPECT_TRUE(st.value.empty()) << n;
    EXPECT_EQ(st.promised, b) << n;  // ballots stay: no proposer may reuse them
    EXPECT_EQ(st.accepted, b) << n;
    EXPECT_FALSE(S(n).Read("uncovered").value().empty()) << n;
    EXPECT_EQ(S(n).ReadPaxos("uncovered").value().value, other) << n;
  }
}

TEST_F(RepairTest, MovingPartitionsAreSyncedButKeepTheirTombstones) {
  Write("n1", "k", "", true, 10);
  Copy("n1", "n2", "k");
  Write("n1", "live", "v", false, 10);
  core::RepairOptions o;
  o.tombstone_grace_ms = 0;
  core::RepairDriver d = MakeDriver(o);
  std::set<uint32_t> all;
  for (uint32_t p = 0; p < kPartitions; ++p) all.insert(p);
  d.SetMoving(all);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  Run(d);
  for (const char* n : {"n1", "n2", "n3"}) {
    EXPECT_FALSE(S(n).Read("k").value().empty()) << n;     // synced, not purged
    EXPECT_FALSE(S(n).Read("live").value().empty()) << n;  // synced
  }
  EXPECT_EQ(d.progress().totals.tombstones_purged, 0u);
}

TEST_F(RepairTest, DryRunPurgesNothing) {
  Write("n1", "k", "", true, 10);
  Copy("n1", "n2", "k");
  Copy("n1", "n3", "k");
  core::RepairOptions o;
  o.tombstone_grace_ms = 0;
  core::RepairDriver d = MakeDriver(o);
  ASSERT_TRUE(d.Start(AllPartitions(true), now_).ok());
  Run(d);
  EXPECT_FALSE(S("n1").Read("k").value().empty());
}

TEST_F(RepairTest, NamedNodeJobSkipsPartitionsItDoesNotHold) {
  core::RepairDriver d("n1", core::RepairOptions{.n = 1});
  d.SetRing(core::Ring::Create(kPartitions, {"n1", "n2", "n3"}, 1).value());
  core::RepairProgress p = AllPartitions();
  p.job.node = "n2";
  ASSERT_TRUE(d.Start(p, now_).ok());
  Run(d);
  // With N=1 no partition has two replicas to compare.
  EXPECT_EQ(d.progress().totals.partitions_skipped, kPartitions);
}

TEST_F(RepairTest, ProgressRoundTripsAndResumeSkipsFinishedPartitions) {
  core::RepairProgress p = AllPartitions();
  p.job.node = "node 2";
  p.finished = {0, 1, 2, 3, 4, 5, 6};
  p.failed = {3};
  p.totals.keys_moved = 12;
  p.elapsed_ms = 99;
  auto back = core::DecodeRepairProgress(core::EncodeRepairProgress(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, p);
  EXPECT_FALSE(core::DecodeRepairProgress("itsuka-repair-1 x").ok());
  EXPECT_FALSE(core::DecodeRepairProgress("").ok());

  Write("n1", "a", "v");
  p.job.node.clear();
  core::RepairDriver d = MakeDriver();
  ASSERT_TRUE(d.Start(p, now_).ok());
  Run(d);
  EXPECT_EQ(d.progress().totals.partitions_done, 1u);  // only partition 7 was left
}

size_t Tombs(server::Store& store, uint32_t p) {
  bool more = false;
  return store.ListTombstones(p, "", 1000, &more)->size();
}

TEST(MerkleStore, TreesRebuiltAtStartupEqualTheIncrementalOnes) {
  storage::MemEngine engine;
  std::map<uint32_t, uint64_t> roots;
  {
    server::Store store(engine, false);
    // Data written before anti-entropy existed: no index yet.
    for (int i = 0; i < 200; ++i) {
      store.Stage("old" + std::to_string(i),
                  core::ApplyWrite(Object(), {}, "n1", core::NewVersion{false, "v", 0, 1}, {}).value());
    }
    ASSERT_TRUE(store.Commit().ok());
  }
  {
    server::Store store(engine, false);
    ASSERT_TRUE(store.EnableMerkle(kPartitions).ok());
    EXPECT_EQ(store.merkle_keys(), 200u);
    for (int i = 0; i < 100; ++i) {
      const std::string k = "new" + std::to_string(i);
      store.Stage(k, core::ApplyWrite(Object(), {}, "n1", core::NewVersion{i % 3 == 0, "w", 0, 1}, {}).value());
    }
    store.Stage("old1", Object());  // a purge
    ASSERT_TRUE(store.Commit().ok());
    EXPECT_EQ(store.merkle_keys(), 299u);
    for (uint32_t p = 0; p < kPartitions; ++p) roots[p] = store.Tree(p) ? store.Tree(p)->root() : 0;
    EXPECT_GT(Tombs(store, 0) + Tombs(store, 1) +
                  Tombs(store, 2) + Tombs(store, 3) +
                  Tombs(store, 4) + Tombs(store, 5) +
                  Tombs(store, 6) + Tombs(store, 7),
              30u);
  }
  server::Store store(engine, false);
  ASSERT_TRUE(store.EnableMerkle(kPartitions).ok());
  EXPECT_EQ(store.merkle_keys(), 299u);
  for (uint32_t p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(store.Tree(p) ? store.Tree(p)->root() : 0, roots[p]) << p;
  }
  std::string bytes;
  EXPECT_TRUE(engine.Get(Column::kData, "old1", &bytes).IsNotFound());
}

}  // namespace
}  // namespace itsuka
namespace itsuka {
namespace {
TEST_F(RepairTest, TombstoneListsArePagedUntilEveryPurgeableOneIsGone) {
  limits_.max_entries = 3;
  for (int i = 0; i < 40; ++i) {
    const std::string k = "t" + std::to_string(i);
    Write("n1", k, "", true, 10);
    Copy("n1", "n2", k);
    Copy("n1", "n3", k);
  }
  core::RepairOptions o;
  o.tombstone_grace_ms = 0;
  core::RepairDriver d = MakeDriver(o);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  Run(d);
  EXPECT_EQ(d.progress().totals.tombstones_purged, 40u);
  for (const char* n : {"n1", "n2", "n3"}) EXPECT_EQ(S(n).merkle_keys(), 0u) << n;
}
// Issue 14: a replica the failure detector suspects is skipped, not waited for; the
// others are synced and the skip is reported (and kept across a resume).
TEST_F(RepairTest, SuspectedReplicaIsSkippedAndReportedAndNothingIsPurgedWithoutIt) {
  for (int i = 0; i < 50; ++i) Write("n1", "k" + std::to_string(i), "v");
  Write("n1", "dead", "", /*tombstone=*/true, /*at_ms=*/1);
  Copy("n1", "n3", "dead");
  core::RepairOptions o;
  o.request_timeout_ms = 100000;  // far beyond the run: nothing may wait for it
  core::RepairDriver d = MakeDriver(o);
  d.SetReachable("n3", false);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  const int64_t start = now_;
  Run(d, /*drop=*/"n3");
  EXPECT_LT(now_ - start, 20000) << "the run waited for the suspected replica";
  const core::RepairProgress& p = d.progress();
  EXPECT_EQ(p.totals.partitions_failed, 0u);
  EXPECT_EQ(p.totals.partitions_done, kPartitions);
  ASSERT_EQ(p.skipped_replicas.count("n3"), 1u);
  EXPECT_EQ(p.skipped_replicas.at("n3").size(), kPartitions);
  EXPECT_EQ(p.totals.tombstones_purged, 0u);  // n3 was not compared: no purge
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(S("n2").Read("k" + std::to_string(i)).value(), S("n1").Read("k" + std::to_string(i)).value());
  }
  EXPECT_TRUE(d.last_repaired().empty());  // a partial sync is not a repair of the partition
  auto back = core::DecodeRepairProgress(core::EncodeRepairProgress(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, p);
  // A version 1 record (before skips were recorded) still reads, with none.
  auto v1 = core::DecodeRepairProgress("itsuka-repair-1 1 0 - 0,1 0 - 1 0 0 0 0 0 0 0 5");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_TRUE(v1->skipped_replicas.empty());
  EXPECT_FALSE(core::DecodeRepairProgress(
                   "itsuka-repair-2 1 0 - 0,1 0 - 1 0 0 0 0 0 0 0 5 zz=1").ok());
}

TEST_F(RepairTest, ReplicaSuspectedWhileARequestIsOutIsSkippedAtOnce) {
  for (int i = 0; i < 50; ++i) Write("n1", "k" + std::to_string(i), "v");
  core::RepairOptions o;
  o.request_timeout_ms = 100000;
  core::RepairDriver d = MakeDriver(o);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  const int64_t start = now_;
  // n3 stops answering; the detector notices a little later.
  for (int round = 0; round < 200000 && d.running(); ++round) {
    now_ += 10;
    if (now_ - start == 500) d.SetReachable("n3", false);
    for (auto& [to, msg] : d.TakeSends()) {
      if (to == "n3") continue;
      core::PeerMessage reply = core::AnswerRepairRequest(msg, S(to), S(to), limits_, wall_, grace_ms_);
      ASSERT_TRUE(S(to).Commit().ok());
      d.OnReply(to, reply, now_);
    }
    d.Tick(now_);
  }
  ASSERT_FALSE(d.running());
  EXPECT_LT(now_ - start, 20000);
  EXPECT_EQ(d.progress().totals.partitions_failed, 0u);
  EXPECT_EQ(d.progress().skipped_replicas.count("n3"), 1u);
}

}  // namespace
}  // namespace itsuka

namespace itsuka {
namespace {
TEST_F(RepairTest, ExpiredValuesArePurgedByTheSameRuleAsTombstones) {
  auto write_ttl = [&](const std::string& key, int64_t expire_at) {
    Object cur = S("n1").Read(key).value();
    Object next = core::ApplyWrite(cur, cur.clock, "n1", core::NewVersion{false, "v", expire_at, 10},
                                   core::ObjectLimits{})
                      .value();
    S("n1").Stage(key, next);
    ASSERT_TRUE(S("n1").Commit().ok());
    Copy("n1", "n2", key);
    Copy("n1", "n3", key);
  };
  write_ttl("expired", wall_ - 5000);   // expired 5 s ago
  write_ttl("recent", wall_ - 500);     // expired, but within the 1 s grace
  write_ttl("future", wall_ + 60000);   // still live
  Write("n1", "plain", "v");            // no expiry: never a candidate
  Copy("n1", "n2", "plain");
  Copy("n1", "n3", "plain");
  core::RepairOptions o;
  o.tombstone_grace_ms = 1000;
  grace_ms_ = 1000;
  core::RepairDriver d = MakeDriver(o);
  ASSERT_TRUE(d.Start(AllPartitions(), now_).ok());
  Run(d);
  EXPECT_EQ(d.progress().totals.tombstones_purged, 1u);
  for (const char* n : {"n1", "n2", "n3"}) {
    EXPECT_TRUE(S(n).Read("expired").value().empty()) << n;
    EXPECT_FALSE(S(n).Read("recent").value().empty()) << n;
    EXPECT_FALSE(S(n).Read("future").value().empty()) << n;
    EXPECT_FALSE(S(n).Read("plain").value().empty()) << n;
  }
}
}  // namespace
}  // namespace itsuka
