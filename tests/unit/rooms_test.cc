// The rooms of NodeCore (core/requests.h, reads.h, writes.h, handoff.h, transfer.h,
// consensus.h), each driven through its own interface over a ReplicaContext, and the
// request-id registry's routing through NodeCore.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <variant>

#include "core/consensus.h"
#include "core/handoff.h"
#include "core/node_core.h"
#include "core/reads.h"
#include "core/replica_context.h"
#include "core/requests.h"
#include "core/transfer.h"
#include "core/writes.h"
#include "map_hint_store.h"
#include "map_store.h"

namespace itsuka::core {
namespace {

Object ObjectWith(const std::string& value) {
  return ApplyWrite(Object(), VClock(), "x", NewVersion{false, value, 0, 1}, ObjectLimits())
      .value();
}

// A ReplicaContext for node "a" of {a, b, c}, n = 3.
struct Context {
  explicit Context(NodeOptions o = NodeOptions()) : ctx("a", store, o) {
    ctx.ring = Ring::Create(16, {"a", "b", "c"}, 1).value();
    ctx.write_ring = ctx.ring;
    ctx.at_capacity = [] { return false; };
  }
  template <typename T>
  std::vector<std::pair<std::string, T>> Sent() {
    std::vector<std::pair<std::string, T>> out;
    for (const auto& [to, msg] : ctx.out.sends) {
      if (const T* m = std::get_if<T>(&msg)) out.emplace_back(to, *m);
    }
    return out;
  }
  MapStore store;
  ReplicaContext ctx;
};

// ---- The registry -------------------------------------------------------------------

TEST(RequestRegistry, RoutesEachIdToTheRoomThatOpenedIt) {
  RequestRegistry r(100);
  const uint64_t read = r.Open(Room::kReads);
  const uint64_t write = r.Open(Room::kWrites);
  const uint64_t round = r.Open(Room::kConsensus);
  EXPECT_EQ(read, 100u);
  EXPECT_NE(read, write);
  EXPECT_EQ(r.Owner(read), Room::kReads);
  EXPECT_EQ(r.Owner(write), Room::kWrites);
  EXPECT_EQ(r.Owner(round), Room::kConsensus);
  EXPECT_EQ(r.open(), 3u);
}

TEST(RequestRegistry, DropsUnknownAndClosedIds) {
  RequestRegistry r(1);
  const uint64_t id = r.Open(Room::kHandoff);
  EXPECT_EQ(r.Owner(id + 1), std::nullopt);  // never opened
  EXPECT_EQ(r.Owner(0), std::nullopt);
  r.Close(id);
  EXPECT_EQ(r.Owner(id), std::nullopt);      // expired: its owner forgot it
  r.Close(id);                               // closing twice is harmless
  EXPECT_EQ(r.open(), 0u);
  const uint64_t local = r.Local();          // an operation's own handle: never routed
  EXPECT_GT(local, id);
  EXPECT_EQ(r.Owner(local), std::nullopt);
}

TEST(RequestRegistry, FirstIdZeroStartsAtOne) {
  RequestRegistry r(0);
  EXPECT_EQ(r.Open(Room::kTransfer), 1u);
}

// Through NodeCore: a reply goes to the room owning its id; a reply of the right type
// with an id no room opened, or with another room's id, changes nothing.
TEST(NodeCoreRouting, RepliesReachOnlyTheOwnerAndLateOnesAreDropped) {
  MapStore store;
  NodeOptions o;
  o.request_timeout_ms = 100;
  NodeCore core("a", store, o);
  core.SetRing(Ring::Create(16, {"a", "b", "c"}, 1).value());
  core.StartGet(7, "k", 3, 0, 0);
  Outbox out = core.TakeOutbox();
  ASSERT_EQ(out.sends.size(), 2u);
  const uint64_t req = std::get<ReplicaRead>(out.sends[0].second).req_id;
  EXPECT_EQ(core.requests_open(), 1u);
  // An unknown id, and the read's id in a write ack: neither reaches the read.
  core.OnMessage("b", ReplicaReadReply{req + 1000, true, ObjectWith("v"), ""}, 1);
  core.OnMessage("b", ReplicaWriteAck{req, true, ""}, 1);
  core.OnMessage("c", ReplicaWriteAck{req, true, ""}, 1);
  EXPECT_TRUE(core.TakeOutbox().results.empty());
  core.OnMessage("b", ReplicaReadReply{req, true, ObjectWith("v"), ""}, 1);
  core.OnMessage("c", ReplicaReadReply{req, true, ObjectWith("v"), ""}, 1);
  out = core.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_TRUE(out.results[0].status.ok());
  EXPECT_EQ(core.requests_open(), 0u);  // every target answered: retired, id closed
  // A late duplicate is dropped.
  core.OnMessage("b", ReplicaReadReply{req, true, ObjectWith("w"), ""}, 2);
  EXPECT_TRUE(core.TakeOutbox().empty());
}

// Each room closes its ids when it forgets the request, timeouts included.
TEST(NodeCoreRouting, EveryRoomClosesItsIdsByItsOwnTimeout) {
  MapStore store;
  MapHintStore hints;
  NodeOptions o;
  o.request_timeout_ms = 100;
  NodeCore core("a", store, o);
  core.SetRing(Ring::Create(16, {"a", "b", "c"}, 1).value());
  core.SetHintStore(&hints, HandoffOptions{});
  ASSERT_TRUE(hints.Add("b", "h", ObjectWith("x")).ok());
  core.StartGet(1, "k", 2, 0, 0);
  core.StartPut(2, "k", WriteSpec{NewVersion{false, "v", 0, 1}}, 2, 0, 0);
  core.StartConsistent(3, "k", true, WriteSpec{}, 0);
  core.ReplayHints(1000, 1);
  EXPECT_GE(core.requests_open(), 3u);
  core.TakeOutbox();
  core.Tick(5000);
  Outbox out = core.TakeOutbox();
  EXPECT_EQ(out.results.size(), 3u);
  // The answered write (hints on) waits for its late targets until the next Tick, then
  // keeps hints for them.
  EXPECT_EQ(core.requests_open(), 1u);
  core.Tick(5001);
  EXPECT_EQ(core.requests_open(), 0u);
  EXPECT_EQ(core.inflight(), 0u);
  EXPECT_EQ(core.replays_in_flight(), 0u);
  EXPECT_EQ(core.handoff_stats().replay_failed, 1u);
}

// ---- Reads ----------------------------------------------------------------------------

TEST(ReadsRoom, AnswersWithTheMergeOnceRRepliedAndRepairsTheStaleReplica) {
  Context t;
  Handoff handoff(t.ctx);
  Reads reads(t.ctx, handoff);
  t.store.data["k"] = ObjectWith("v");
  reads.Start(1, "k", 2, 0, 0);
  auto asks = t.Sent<ReplicaRead>();
  ASSERT_EQ(asks.size(), 2u);
  EXPECT_EQ(reads.inflight(), 1u);
  const uint64_t req = asks[0].second.req_id;
  EXPECT_EQ(t.ctx.requests.Owner(req), Room::kReads);
  t.ctx.out = Outbox();
  reads.OnReply(req, "b", ReplicaReadReply{req, true, ObjectWith("v"), ""});
  ASSERT_EQ(t.ctx.out.results.size(), 1u);
  EXPECT_TRUE(t.ctx.out.results[0].status.ok());
  EXPECT_EQ(reads.inflight(), 0u);
  // c answers late with nothing: it is repaired, and the read is forgotten.
  t.ctx.out = Outbox();
  reads.OnReply(req, "c", ReplicaReadReply{req, true, Object(), ""});
  auto repairs = t.Sent<ReplicaWrite>();
  ASSERT_EQ(repairs.size(), 1u);
  EXPECT_EQ(repairs[0].first, "c");
  EXPECT_EQ(t.ctx.requests.open(), 0u);
}

TEST(ReadsRoom, ReplicaSideAnswersWithItsCopy) {
  Context t;
  Handoff handoff(t.ctx);
  Reads reads(t.ctx, handoff);
  t.store.data["k"] = ObjectWith("v");
  reads.HandleRead("b", ReplicaRead{9, "k"});
  auto replies = t.Sent<ReplicaReadReply>();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].first, "b");
  EXPECT_TRUE(replies[0].second.ok);
  EXPECT_EQ(replies[0].second.req_id, 9u);
  EXPECT_EQ(replies[0].second.object, t.store.data["k"]);
}

// ---- Writes ---------------------------------------------------------------------------

TEST(WritesRoom, CoordinatesAndAnswersAfterWAcks) {
  Context t;
  Handoff handoff(t.ctx);
  Forwarder forwarder(t.ctx);
  Writes writes(t.ctx, handoff, forwarder);
  writes.Start(1, "k", WriteSpec{NewVersion{false, "v", 0, 1}}, 2, 0, 0);
  auto sent = t.Sent<ReplicaWrite>();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_TRUE(t.ctx.out.results.empty());
  const uint64_t req = sent[0].second.req_id;
  EXPECT_EQ(t.ctx.requests.Owner(req), Room::kWrites);
  EXPECT_EQ(t.store.data.count("k"), 1u);  // staged here before anything is sent
  writes.OnAck(req, "b", ReplicaWriteAck{req, true, ""});
  ASSERT_EQ(t.ctx.out.results.size(), 1u);
  EXPECT_TRUE(t.ctx.out.results[0].status.ok());
  EXPECT_EQ(writes.inflight(), 0u);
  EXPECT_EQ(t.ctx.requests.open(), 0u);  // no hints: not kept for the late target
}

TEST(WritesRoom, ReplicaSideMergesAndAcks) {
  Context t;
  Handoff handoff(t.ctx);
  Forwarder forwarder(t.ctx);
  Writes writes(t.ctx, handoff, forwarder);
  writes.HandleWrite("b", ReplicaWrite{5, "k", ObjectWith("v"), ""});
  EXPECT_EQ(t.store.data["k"], ObjectWith("v"));
  auto acks = t.Sent<ReplicaWriteAck>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second.req_id, 5u);
  EXPECT_TRUE(acks[0].second.ok);
}

TEST(WritesRoom, ForwardTimesOutWithOutcomeUnknown) {
  Context t;
  Forwarder forwarder(t.ctx);
  const uint64_t req = forwarder.Open(3, "b", 0);
  EXPECT_EQ(t.ctx.requests.Owner(req), Room::kForwards);
  forwarder.Tick(t.ctx.options.request_timeout_ms);
  ASSERT_EQ(t.ctx.out.results.size(), 1u);
  EXPECT_EQ(t.ctx.out.results[0].status.code(), Status::Code::kTimeout);
  EXPECT_EQ(t.ctx.requests.Owner(req), std::nullopt);
}

// ---- Handoff --------------------------------------------------------------------------

TEST(HandoffRoom, ReplaysAHintAndDeletesItAfterTheAck) {
  Context t;
  MapHintStore hints;
  Handoff handoff(t.ctx);
  EXPECT_FALSE(handoff.AddHint("b", "k", ObjectWith("v")).ok());  // no store yet
  handoff.SetStore(&hints, HandoffOptions{});
  ASSERT_TRUE(handoff.AddHint("b", "k", ObjectWith("v")).ok());
  EXPECT_EQ(handoff.stats().written, 1u);
  handoff.Replay(1000, 1);
  auto sent = t.Sent<ReplicaWrite>();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].first, "b");
  const uint64_t req = sent[0].second.req_id;
  EXPECT_EQ(handoff.in_flight(), 1u);
  handoff.OnAck(req, "c", ReplicaWriteAck{req, true, ""});  // not the target: ignored
  EXPECT_EQ(handoff.in_flight(), 1u);
  handoff.OnAck(req, "b", ReplicaWriteAck{req, true, ""});
  EXPECT_EQ(handoff.in_flight(), 0u);
  EXPECT_EQ(handoff.stats().replayed, 1u);
  EXPECT_TRUE(hints.hints.empty());
  EXPECT_EQ(t.ctx.requests.open(), 0u);
}

TEST(HandoffRoom, ExpiresHintsOfAnUnreachableTarget) {
  Context t;
  MapHintStore hints;
  Handoff handoff(t.ctx);
  HandoffOptions o;
  o.max_hint_age_ms = 1000;
  handoff.SetStore(&hints, o);
  ASSERT_TRUE(handoff.AddHint("b", "k", ObjectWith("v")).ok());
  t.ctx.unreachable.insert("b");
  handoff.Replay(0, 500);
  EXPECT_EQ(handoff.stats().dropped, 0u);
  EXPECT_TRUE(handoff.ReadWithHints("k").value() == ObjectWith("v"));
  handoff.Replay(2000, 5000);  // older than max_hint_age_ms
  EXPECT_EQ(handoff.stats().dropped, 1u);
  EXPECT_TRUE(t.ctx.out.sends.empty());
}

// ---- Transfer -------------------------------------------------------------------------

TEST(TransferRoom, RefusesARequestForAnotherRing) {
  Context t;
  Transfers transfers(t.ctx);
  transfers.HandleRequest("b", TransferRequest{4, 32, {1}, "", 10});
  auto sent = t.Sent<TransferBatch>();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_FALSE(sent[0].second.ok);
  EXPECT_EQ(sent[0].second.req_id, 4u);
  EXPECT_NE(sent[0].second.error.find("16 partitions"), std::string::npos);
}

TEST(TransferRoom, PlansTransfersForGainedPartitionsAndSyncsWhenDone) {
  Context t;
  // "a" joins: it gains partitions of the write ring {a, b, c} from the read ring {b, c}.
  t.ctx.ring = Ring::Create(16, {"b", "c"}, 1).value();
  t.ctx.write_ring = Ring::Create(16, {"a", "b", "c"}, 2).value();
  Transfers transfers(t.ctx);
  transfers.Plan(42);
  EXPECT_EQ(transfers.synced(), 0u);
  EXPECT_GT(transfers.pending(), 0u);
  transfers.Tick(0);
  auto requests = t.Sent<TransferRequest>();
  ASSERT_FALSE(requests.empty());
  t.ctx.out = Outbox();
  for (const auto& [source, m] : requests) {
    EXPECT_EQ(t.ctx.requests.Owner(m.req_id), Room::kTransfer);
    TransferBatch done{m.req_id, true, "", {}, "", true};
    transfers.OnBatch(m.req_id, source, done, 1);
  }
  EXPECT_EQ(transfers.synced(), 42u);
  EXPECT_EQ(transfers.pending(), 0u);
  EXPECT_EQ(t.ctx.requests.open(), 0u);
}

// ---- Consensus ------------------------------------------------------------------------

TEST(ConsensusRoom, AcceptorPromisesOnceAndRefusesALowerBallot) {
  Context t;
  Forwarder forwarder(t.ctx);
  Consensus consensus(t.ctx, forwarder);
  const uint64_t owners = OwnersFingerprint(t.ctx.Replicas("k"));  // no move: both lists
  consensus.HandlePrepare("b", PaxosPrepare{1, "k", Ballot{5, "b"}, owners, owners});
  consensus.HandlePrepare("c", PaxosPrepare{2, "k", Ballot{3, "c"}, owners, owners});
  auto promises = t.Sent<PaxosPromise>();
  ASSERT_EQ(promises.size(), 2u);
  EXPECT_TRUE(promises[0].second.ok);
  EXPECT_FALSE(promises[1].second.ok);
  EXPECT_EQ(promises[1].second.promised, (Ballot{5, "b"}));
  EXPECT_EQ(t.store.paxos["k"].promised, (Ballot{5, "b"}));  // staged before the reply
}

TEST(ConsensusRoom, ASingleNodeReadIsChosenAtOnce) {
  MapStore store;
  ReplicaContext ctx("a", store, NodeOptions());
  ctx.ring = Ring::Create(4, {"a"}, 1).value();
  ctx.write_ring = ctx.ring;
  ctx.at_capacity = [] { return false; };
  Forwarder forwarder(ctx);
  Consensus consensus(ctx, forwarder);
  consensus.Start(1, "k", false, WriteSpec{NewVersion{false, "v", 0, 1}}, 0);
  ASSERT_EQ(ctx.out.results.size(), 1u);
  EXPECT_TRUE(ctx.out.results[0].status.ok());
  EXPECT_TRUE(ctx.out.results[0].applied);
  EXPECT_EQ(consensus.stats().chosen, 1u);
  EXPECT_EQ(consensus.inflight(), 0u);
  EXPECT_EQ(ctx.requests.open(), 0u);
}

// The ring fence's proposer side (issue 16): a vote counts only from a node that is a
// primary of the key in the proposer's view when the vote arrives.
TEST(ConsensusRoom, AVoteFromANodeThatNoLongerHoldsTheKeyIsNotCounted) {
  Context t;
  Forwarder forwarder(t.ctx);
  Consensus consensus(t.ctx, forwarder);
  std::string key;
  for (int i = 0;; ++i) {
    key = "k" + std::to_string(i);
    if (t.ctx.Replicas(key).front() == "a") break;
  }
  consensus.Start(1, key, true, WriteSpec{}, 0);
  auto prepares = t.Sent<PaxosPrepare>();
  ASSERT_EQ(prepares.size(), 2u);  // to b and c; a promised itself
  const uint64_t round = prepares[0].second.req_id;
  // The ring moves on before the promises arrive: c no longer holds the key.
  t.ctx.ring = Ring::Create(16, {"a", "b", "d"}, 2).value();
  t.ctx.write_ring = t.ctx.ring;
  ASSERT_FALSE(t.ctx.IsReplica(key, "c"));
  t.ctx.out = Outbox();
  PaxosPromise yes;
  yes.req_id = round;
  yes.ok = true;
  yes.promised = prepares[0].second.ballot;
  consensus.OnPromise(round, "c", yes, 1);
  EXPECT_TRUE(t.Sent<PaxosAccept>().empty()) << "a majority formed with a former primary";
  EXPECT_EQ(consensus.stats().refused_owners, 0u);
  consensus.OnPromise(round, "b", yes, 1);
  // a (self) and b: a majority of primaries promised, so the round reached its accept
  // phase. There a's own acceptor refuses the round (its owners of the key changed since
  // the prepare, DESIGN 5.6 R2) before any accept leaves, and the round is retried over
  // the new owners. (Was: the accepts to b and c were sent first, EXPECT_FALSE(empty()).)
  EXPECT_EQ(consensus.stats().refused_owners, 1u);
  EXPECT_TRUE(t.Sent<PaxosAccept>().empty()) << "accepts sent for a round a refused itself";
  EXPECT_EQ(consensus.stats().retries, 1u);
}

}  // namespace
}  // namespace itsuka::core
