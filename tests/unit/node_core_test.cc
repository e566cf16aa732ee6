#include "core/node_core.h"
#include "map_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace itsuka::core {
namespace {

// A node "a" of the cluster {a, b, c} over a MapStore.
struct TestNode {
  explicit TestNode(int n = 3, size_t max_inflight = 10000, const std::string& self = "a")
      : core(self, store, Options(n, max_inflight)) {
    core.SetRing(Ring::Create(16, {"a", "b", "c"}, 1).value());
  }
  static NodeOptions Options(int n, size_t max_inflight) {
    NodeOptions o;
    o.n = n;
    o.max_inflight = max_inflight;
    return o;
  }
  MapStore store;
  NodeCore core;
};

// Reads that were answered but still wait for slow replicas (to repair them) must not
// make the node refuse new requests.
TEST(NodeCore, AnsweredReadsDoNotCountAgainstTheInFlightLimit) {
  TestNode t(3, 4);
  NodeCore& core = t.core;
  for (uint64_t i = 1; i <= 20; ++i) core.StartGet(i, "k" + std::to_string(i), 1, 0, 0);
  Outbox out = core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 20u);
  for (const ClientResult& r : out.results) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(core.inflight(), 0u);
  // A write that needs a remote ack does count.
  for (uint64_t i = 21; i <= 24; ++i) core.StartPut(i, "w", WriteSpec{NewVersion{false, "v", 0, 1}}, 2, 0, 0);
  core.StartPut(25, "w", WriteSpec{NewVersion{false, "v", 0, 1}}, 2, 0, 0);
  out = core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].client_req, 25u);
  EXPECT_EQ(out.results[0].status.code(), Status::Code::kBusy);
}

// Finds the first key whose preference list (n=2 of a, b, c) does not include "a".
std::string KeyNotOn(const NodeCore& core, const std::string& node) {
  for (int i = 0;; ++i) {
    std::string k = "key" + std::to_string(i);
    auto r = core.Replicas(k);
    if (std::find(r.begin(), r.end(), node) == r.end()) return k;
  }
}

TEST(NodeCore, NonReplicaForwardsWritesToAPrimary) {
  TestNode t(2);
  NodeCore& core = t.core;
  MapStore& store = t.store;
  std::string key = KeyNotOn(core, "a");
  core.StartPut(1, key, WriteSpec{NewVersion{false, "v", 0, 1}}, 1, 0, 0);
  Outbox out = core.TakeOutbox();
  ASSERT_EQ(out.sends.size(), 1u);
  EXPECT_EQ(out.sends[0].first, core.Replicas(key)[0]);
  const auto* fwd = std::get_if<ForwardPut>(&out.sends[0].second);
  ASSERT_NE(fwd, nullptr);
  EXPECT_TRUE(store.data.empty());  // it issued no dot of its own
  core.OnMessage(out.sends[0].first, ForwardResult{fwd->req_id, 0, "", true}, 5);
  out = core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_TRUE(out.results[0].status.ok());
  // With every primary unreachable: not applied.
  for (const std::string& r : core.Replicas(key)) core.SetReachable(r, false);
  core.StartPut(2, key, WriteSpec{NewVersion{false, "v", 0, 1}}, 1, 0, 0);
  out = core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].status.code(), Status::Code::kUnavailable);
}

TEST(NodeCore, ReadRepairSendsTheMergeToStaleReplicas) {
  TestNode t;
  NodeCore& core = t.core;
  MapStore& store = t.store;
  Object newer = ApplyWrite(Object(), VClock(), "b", NewVersion{false, "new", 0, 1}, ObjectLimits{}).value();
  core.StartGet(1, "k", 1, 0, 0);
  Outbox out = core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);  // R=1: answered from the local (empty) copy
  EXPECT_TRUE(out.results[0].object.empty());
  uint64_t req = 0;
  for (auto& [to, msg] : out.sends) req = std::get<ReplicaRead>(msg).req_id;
  core.OnMessage("b", ReplicaReadReply{req, true, newer, ""}, 1);
  core.OnMessage("c", ReplicaReadReply{req, true, Object(), ""}, 2);
  out = core.TakeOutbox();
  EXPECT_EQ(store.data["k"], newer);  // the local copy was repaired
  ASSERT_EQ(out.sends.size(), 1u);    // and so is c; b was current
  EXPECT_EQ(out.sends[0].first, "c");
  EXPECT_EQ(std::get<ReplicaWrite>(out.sends[0].second).object, newer);
}

// Answered reads keep waiting for late replicas only while the values they hold stay
// under max_answered_read_bytes; a large value read many times is let go at once.
TEST(NodeCore, AnsweredReadsOfLargeValuesAreLetGoPastTheByteBound) {
  MapStore store;
  NodeOptions o;
  o.max_answered_read_bytes = 3000;
  NodeCore core("a", store, o);
  core.SetRing(Ring::Create(16, {"a", "b", "c"}, 1).value());
  store.data["big"] = ApplyWrite(Object(), VClock(), "a", NewVersion{false, std::string(1000, 'v'), 0, 1},
                                 ObjectLimits{}).value();
  Object newer = ApplyWrite(store.data["big"], store.data["big"].clock, "b",
                            NewVersion{false, std::string(1000, 'w'), 0, 1}, ObjectLimits{}).value();
  const Object old = store.data["big"];
  std::vector<uint64_t> reqs;
  for (uint64_t i = 1; i <= 10; ++i) {
    core.StartGet(i, "big", 1, 0, 0);
    Outbox out = core.TakeOutbox();
    ASSERT_EQ(out.results.size(), 1u);
    for (auto& [to, msg] : out.sends) {
      if (to == "b") reqs.push_back(std::get<ReplicaRead>(msg).req_id);
    }
  }
  ASSERT_EQ(reqs.size(), 10u);
  // Late replies: b newer, c stale. Only the reads still kept (the first three, 3000
  // bytes) repair c; the others were let go and ignore their replies.
  size_t repaired = 0;
  for (uint64_t req : reqs) {
    core.OnMessage("b", ReplicaReadReply{req, true, newer, ""}, 1);
    core.OnMessage("c", ReplicaReadReply{req, true, old, ""}, 1);
    Outbox out = core.TakeOutbox();
    for (auto& [to, msg] : out.sends) repaired += std::holds_alternative<ReplicaWrite>(msg) ? 1 : 0;
  }
  EXPECT_EQ(repaired, 3u);
}

TEST(NodeCore, ReplicaMergesAndAcksWrites) {
  TestNode t(3, 10000, "b");
  NodeCore& core = t.core;
  MapStore& store = t.store;
  Object x = ApplyWrite(Object(), VClock(), "a", NewVersion{false, "x", 0, 1}, ObjectLimits{}).value();
  Object y = ApplyWrite(Object(), VClock(), "c", NewVersion{false, "y", 0, 1}, ObjectLimits{}).value();
  core.OnMessage("a", ReplicaWrite{7, "k", x, ""}, 0);
  core.OnMessage("c", ReplicaWrite{0, "k", y, ""}, 0);  // read repair: no ack
  Outbox out = core.TakeOutbox();
  ASSERT_EQ(out.sends.size(), 1u);
  EXPECT_EQ(out.sends[0].first, "a");
  // The ack carries this replica's ring version (the ring fence, core/peer_checks.h).
  EXPECT_EQ(std::get<ReplicaWriteAck>(out.sends[0].second),
            (ReplicaWriteAck{7, true, "OK", core.ring()->version()}));
  EXPECT_EQ(store.data["k"].siblings.size(), 2u);  // concurrent: both kept
}

}  // namespace
}  // namespace itsuka::core
