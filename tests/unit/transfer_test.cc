// Partition transfer: Store::Scan over committed and staged objects, and two NodeCores
// copying the partitions a joining node gains, batch by batch.
#include <gtest/gtest.h>

#include "common/hash.h"
#include "core/gossip.h"
#include "core/node_core.h"
#include "server/store.h"
#include "storage/mem_engine.h"

namespace itsuka {
namespace {

core::Object Value(const std::string& v) {
  return core::ApplyWrite(core::Object(), core::VClock(), "w", core::NewVersion{false, v, 0, 1},
                          core::ObjectLimits{})
      .value();
}

std::string Only(const core::Object& o) { return o.siblings.size() == 1 ? o.siblings[0].value : "?"; }

TEST(Transfer, StoreScanMergesStagedObjectsInKeyOrder) {
  storage::MemEngine engine;
  server::Store store(engine, false);
  for (const char* k : {"b", "d", "f", "h"}) store.Stage(k, Value(std::string("disk-") + k));
  ASSERT_TRUE(store.Commit().ok());
  store.Stage("a", Value("staged-a"));
  store.Stage("d", Value("staged-d"));  // newer than the committed one
  store.Stage("g", Value("staged-g"));
  auto want = [](std::string_view k) { return k != "f"; };
  std::vector<std::pair<std::string, std::string>> seen;
  std::string start;
  int batches = 0;
  for (;;) {
    Result<core::LocalStore::ScanBatch> b = store.Scan(start, 2, 100, want);
    ASSERT_TRUE(b.ok());
    ++batches;
    for (auto& [k, o] : b->objects) seen.emplace_back(k, Only(o));
    if (b->done) break;
    ASSERT_GT(b->next, start);
    start = b->next;
  }
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::string>>{
                      {"a", "staged-a"}, {"b", "disk-b"}, {"d", "staged-d"}, {"g", "staged-g"}, {"h", "disk-h"}}));
  EXPECT_GE(batches, 3);
  // max_examined bounds the work of one call even when nothing matches.
  Result<core::LocalStore::ScanBatch> none = store.Scan("", 10, 2, [](std::string_view) { return false; });
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->objects.empty());
  EXPECT_FALSE(none->done);
}

// Delivers every message between the two cores until nothing is left.
void Pump(std::map<std::string, core::NodeCore*> cores, std::map<std::string, server::Store*> stores,
          int64_t now, int* messages) {
  for (bool any = true; any;) {
    any = false;
    for (auto& [id, core] : cores) {
      core::Outbox out = core->TakeOutbox();
      ASSERT_TRUE(stores[id]->Commit().ok());
      for (auto& [to, msg] : out.sends) {
        any = true;
        ++*messages;
        cores.at(to)->OnMessage(id, msg, now);
      }
    }
  }
}

TEST(Transfer, JoiningNodeCopiesEveryObjectOfItsNewPartitions) {
  storage::MemEngine ea, eb;
  server::Store sa(ea, false), sb(eb, false);
  core::NodeOptions o;
  o.n = 1;  // each partition on one node: b gains exactly the partitions it owns
  core::NodeCore a("a", sa, o), b("b", sb, o);
  core::Ring old_ring = core::Ring::Create(16, {"a"}, 1).value();
  core::Ring new_ring = core::Ring::Create(16, {"a", "b"}, 2).value();
  for (int i = 0; i < 1000; ++i) sa.Stage("key" + std::to_string(i), Value("v" + std::to_string(i)));
  ASSERT_TRUE(sa.Commit().ok());
  a.SetRings(old_ring, new_ring, 77);
  EXPECT_EQ(a.Synced(), 77u);  // a gains nothing
  b.SetRings(old_ring, new_ring, 77);
  EXPECT_EQ(b.Synced(), 0u);
  EXPECT_GT(b.TransfersPending(), 0u);
  b.Tick(0);
  int messages = 0;
  Pump({{"a", &a}, {"b", &b}}, {{"a", &sa}, {"b", &sb}}, 0, &messages);
  EXPECT_EQ(b.Synced(), 77u);
  EXPECT_EQ(b.TransfersPending(), 0u);
  size_t moved = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string k = "key" + std::to_string(i);
    const bool mine = new_ring.Owner(new_ring.PartitionOfKey(k)) == "b";
    core::Object got = sb.Read(k).value();
    if (mine) {
      ++moved;
      EXPECT_EQ(Only(got), "v" + std::to_string(i)) << k;
    } else {
      EXPECT_TRUE(got.siblings.empty()) << k << " copied to a node that does not own it";
    }
  }
  EXPECT_GT(moved, 200u);
  EXPECT_EQ(b.transferred_objects(), moved);
  EXPECT_GT(messages, 2 * static_cast<int>(moved / 256));  // several bounded batches
}

TEST(Transfer, BatchesArePaced) {
  storage::MemEngine ea, eb;
  server::Store sa(ea, false), sb(eb, false);
  core::NodeOptions o;
  o.n = 1;
  o.transfer_interval_ms = 100;
  core::NodeCore a("a", sa, o), b("b", sb, o);
  for (int i = 0; i < 2000; ++i) sa.Stage("key" + std::to_string(i), Value("v"));
  ASSERT_TRUE(sa.Commit().ok());
  core::Ring old_ring = core::Ring::Create(16, {"a"}, 1).value();
  core::Ring new_ring = core::Ring::Create(16, {"a", "b"}, 2).value();
  a.SetRings(old_ring, new_ring, 3);
  b.SetRings(old_ring, new_ring, 3);
  auto requests = [](core::Outbox out) {
    std::vector<core::PeerMessage> v;
    for (auto& [to, m] : out.sends) {
      if (std::holds_alternative<core::TransferRequest>(m)) v.push_back(m);
    }
    return v;
  };
  b.Tick(0);
  std::vector<core::PeerMessage> first = requests(b.TakeOutbox());
  ASSERT_EQ(first.size(), 1u);
  a.OnMessage("b", first[0], 0);
  core::Outbox reply = a.TakeOutbox();
  ASSERT_EQ(reply.sends.size(), 1u);
  ASSERT_FALSE(std::get<core::TransferBatch>(reply.sends[0].second).done);
  b.OnMessage("a", reply.sends[0].second, 10);
  EXPECT_TRUE(requests(b.TakeOutbox()).empty());  // not before 10 + 100
  b.Tick(60);
  EXPECT_TRUE(requests(b.TakeOutbox()).empty());
  b.Tick(110);
  EXPECT_EQ(requests(b.TakeOutbox()).size(), 1u);
}

// A move under intermittent faults: lost batches, an error reply and a source that is
// unreachable for a while never send the transfer back to the start of its partitions
// (every request starts at or after the last one's cursor), and progress is reported
// throughout (partitions done of total, keys copied, failed batches).
TEST(Transfer, AMoveResumesFromItsCursorAfterLostBatchesAndReportsProgress) {
  storage::MemEngine ea, eb;
  server::Store sa(ea, false), sb(eb, false);
  core::NodeOptions o;
  o.n = 1;
  o.request_timeout_ms = 1000;
  core::NodeCore a("a", sa, o), b("b", sb, o);
  for (int i = 0; i < 3000; ++i) sa.Stage("key" + std::to_string(i), Value("v"));
  ASSERT_TRUE(sa.Commit().ok());
  core::Ring old_ring = core::Ring::Create(16, {"a"}, 1).value();
  core::Ring new_ring = core::Ring::Create(16, {"a", "b"}, 2).value();
  a.SetRings(old_ring, new_ring, 5);
  b.SetRings(old_ring, new_ring, 5);
  const core::TransferProgress start = b.transfer_progress();
  EXPECT_EQ(start.sources_total, 1u);
  EXPECT_EQ(start.sources_done, 0u);
  EXPECT_GT(start.partitions_total, 0u);
  EXPECT_EQ(start.partitions_done, 0u);
  int64_t now = 0;
  std::string last_start;
  int requests = 0, lost = 0, refused = 0;
  uint64_t keys = 0;
  bool saw_partial = false;
  for (int step = 0; step < 500 && b.Synced() != 5u; ++step) {
    b.SetReachable("a", step % 7 != 3);  // unreachable now and then
    b.Tick(now);
    core::Outbox out = b.TakeOutbox();
    ASSERT_TRUE(sb.Commit().ok());
    bool waited = false;
    for (auto& [to, msg] : out.sends) {
      const auto* req = std::get_if<core::TransferRequest>(&msg);
      ASSERT_NE(req, nullptr);
      ++requests;
      EXPECT_GE(req->start, last_start) << "request " << requests << " went back";
      last_start = req->start;
      if (requests % 3 == 2) {  // lost on the way: retried after the timeout
        ++lost;
        waited = true;
        continue;
      }
      if (requests % 11 == 7) {  // an error reply: asked again shortly, same cursor
        ++refused;
        core::TransferBatch err;
        err.req_id = req->req_id;
        err.error = "busy";
        b.OnMessage("a", err, now);
        continue;
      }
      a.OnMessage("b", msg, now);
      for (auto& [to2, reply] : a.TakeOutbox().sends) b.OnMessage("a", reply, now);
    }
    ASSERT_TRUE(sb.Commit().ok());
    const core::TransferProgress p = b.transfer_progress();
    if (b.Synced() != 5u) {
      EXPECT_GE(p.keys_copied, keys);
      keys = p.keys_copied;
      saw_partial = saw_partial || (p.keys_copied > 0 && p.partitions_done < p.partitions_total);
      EXPECT_GE(p.batches_failed, static_cast<uint64_t>(refused));
    }
    now += waited ? o.request_timeout_ms : 250;
  }
  EXPECT_EQ(b.Synced(), 5u);
  EXPECT_GT(lost, 3);
  EXPECT_GT(refused, 0);
  EXPECT_TRUE(saw_partial);
  const core::TransferProgress end = b.transfer_progress();
  EXPECT_EQ(end.partitions_total, 0u);  // nothing moves here any more
  size_t owned = 0;
  for (int i = 0; i < 3000; ++i) {
    const std::string k = "key" + std::to_string(i);
    if (new_ring.Owner(new_ring.PartitionOfKey(k)) != "b") continue;
    ++owned;
    EXPECT_EQ(Only(sb.Read(k).value()), "v") << k;
  }
  EXPECT_EQ(b.transferred_objects(), owned);  // each key copied once: nothing restarted
}

// ITSUKA.TRANSFERS's figures: per source, the partitions wanted, keys and bytes merged,
// batches and times; nothing once the plan is synced.
TEST(Transfer, ProgressCountsWhatWasMergedPerSource) {
  storage::MemEngine ea, eb;
  server::Store sa(ea, false), sb(eb, false);
  core::NodeOptions o;
  o.n = 1;
  o.transfer_interval_ms = 0;
  core::NodeCore a("a", sa, o), b("b", sb, o);
  for (int i = 0; i < 2000; ++i) sa.Stage("key" + std::to_string(i), Value("value"));
  ASSERT_TRUE(sa.Commit().ok());
  core::Ring old_ring = core::Ring::Create(16, {"a"}, 1).value();
  core::Ring new_ring = core::Ring::Create(16, {"a", "b"}, 2).value();
  a.SetRings(old_ring, new_ring, 3);
  b.SetRings(old_ring, new_ring, 3);
  std::vector<core::SourceTransferProgress> before = b.TransfersInProgress();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].source, "a");
  EXPECT_EQ(before[0].partitions.size(), b.TransfersPending());
  EXPECT_EQ(before[0].started_ms, 0);  // nothing asked yet
  EXPECT_EQ(before[0].keys, 0u);
  b.Tick(5);
  core::Outbox out = b.TakeOutbox();
  ASSERT_EQ(out.sends.size(), 1u);
  a.OnMessage("b", out.sends[0].second, 5);
  core::Outbox reply = a.TakeOutbox();
  ASSERT_EQ(reply.sends.size(), 1u);
  const auto& batch = std::get<core::TransferBatch>(reply.sends[0].second);
  ASSERT_FALSE(batch.done);
  b.OnMessage("a", reply.sends[0].second, 20);
  std::vector<core::SourceTransferProgress> mid = b.TransfersInProgress();
  ASSERT_EQ(mid.size(), 1u);
  EXPECT_EQ(mid[0].started_ms, 5);
  EXPECT_EQ(mid[0].last_batch_ms, 20);
  EXPECT_EQ(mid[0].batches, 1u);
  EXPECT_FALSE(mid[0].done);
  EXPECT_EQ(mid[0].keys, b.transferred_objects());
  EXPECT_GT(mid[0].keys, 0u);
  EXPECT_GE(mid[0].bytes, mid[0].keys * (4 + 5));  // "keyN" and "value"
  int messages = 0;
  b.Tick(200);
  Pump({{"a", &a}, {"b", &b}}, {{"a", &sa}, {"b", &sb}}, 200, &messages);
  EXPECT_EQ(b.Synced(), 3u);
  EXPECT_TRUE(b.TransfersInProgress().empty());
}

TEST(Transfer, TransferFromARingOfAnotherSizeIsRefused) {
  storage::MemEngine ea;
  server::Store sa(ea, false);
  core::NodeCore a("a", sa, core::NodeOptions{});
  a.SetRing(core::Ring::Create(16, {"a"}, 1).value());
  a.OnMessage("x", core::TransferRequest{9, 32, {1}, "", 10}, 0);
  core::Outbox out = a.TakeOutbox();
  ASSERT_EQ(out.sends.size(), 1u);
  const auto* batch = std::get_if<core::TransferBatch>(&out.sends[0].second);
  ASSERT_NE(batch, nullptr);
  EXPECT_FALSE(batch->ok);
  EXPECT_EQ(batch->req_id, 9u);
  EXPECT_NE(batch->error.find("16 partitions"), std::string::npos);
}

// During a move a write needs W acks from the old owners and W from the new ones.
TEST(Transfer, WritesDuringAMoveNeedJointQuorums) {
  storage::MemEngine ea;
  server::Store sa(ea, false);
  core::NodeOptions o;
  o.n = 2;
  core::NodeCore a("a", sa, o);
  a.SetRings(core::Ring::Create(16, {"a", "b"}, 1).value(),
             core::Ring::Create(16, {"a", "b", "c"}, 2).value(), 5);
  // A key whose new preference list has c.
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    const std::string k = "k" + std::to_string(i);
    std::vector<std::string> w = a.write_ring()->PreferenceList(a.write_ring()->PartitionOfKey(k), 2);
    if (std::find(w.begin(), w.end(), "c") != w.end()) key = k;
  }
  a.TakeOutbox();
  core::WriteSpec spec;
  spec.version = core::NewVersion{false, "x", 0, 1};
  a.StartPut(1, key, spec, 2, 0, 0);
  core::Outbox out = a.TakeOutbox();
  std::set<std::string> to;
  for (auto& [dest, msg] : out.sends) {
    if (std::holds_alternative<core::ReplicaWrite>(msg)) to.insert(dest);
  }
  EXPECT_EQ(to, (std::set<std::string>{"b", "c"}));
  // c's ack alone does not make W=2: b (a current owner) must answer.
  for (auto& [dest, msg] : out.sends) {
    if (dest == "c") a.OnMessage("c", core::ReplicaWriteAck{std::get<core::ReplicaWrite>(msg).req_id, true, ""}, 1);
  }
  EXPECT_TRUE(a.TakeOutbox().results.empty());
  for (auto& [dest, msg] : out.sends) {
    if (dest == "b") a.OnMessage("b", core::ReplicaWriteAck{std::get<core::ReplicaWrite>(msg).req_id, true, ""}, 1);
  }
  core::Outbox done = a.TakeOutbox();
  ASSERT_EQ(done.results.size(), 1u);  // old {a, b} acked; new: c and a or b acked
  EXPECT_TRUE(done.results[0].status.ok());

  // Without the new owner c's ack the old quorum is not enough: -TIMEOUT at the deadline.
  a.StartPut(2, key, spec, 2, 0, 100);
  core::Outbox second = a.TakeOutbox();
  for (auto& [dest, msg] : second.sends) {
    if (dest == "b") a.OnMessage("b", core::ReplicaWriteAck{std::get<core::ReplicaWrite>(msg).req_id, true, ""}, 101);
  }
  // (n = 2 and c is a new owner: a and b together are only one of the two needed.)
  EXPECT_TRUE(a.TakeOutbox().results.empty());
  a.Tick(100 + o.request_timeout_ms);
  core::Outbox late = a.TakeOutbox();
  ASSERT_EQ(late.results.size(), 1u);
  EXPECT_EQ(late.results[0].status.code(), Status::Code::kTimeout);
  EXPECT_NE(late.results[0].status.message().find("new replicas"), std::string::npos);

  // c unreachable: refused up front, nothing applied.
  a.SetReachable("c", false);
  a.StartPut(3, key, spec, 2, 0, 200);
  core::Outbox refused = a.TakeOutbox();
  ASSERT_EQ(refused.results.size(), 1u);
  EXPECT_EQ(refused.results[0].status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(refused.sends.empty());
}

}  // namespace
}  // namespace itsuka
