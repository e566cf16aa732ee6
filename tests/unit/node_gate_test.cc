// core::Node's membership gate (core/node.h, docs/DESIGN.md 4.3.1): a node restarted
// from a saved view neither coordinates nor votes until it has exchanged gossip with a
// majority of its view's active members; a node that learns it is left stops serving.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/node.h"
#include "server/store.h"
#include "storage/mem_engine.h"

namespace itsuka::core {
namespace {

constexpr uint32_t kPartitions = 16;

MemberState Member(const std::string& id, uint64_t incarnation = 1) {
  MemberState m;
  m.id = id;
  m.incarnation = incarnation;
  m.peer_addr = "10.0.0." + id.substr(1) + ":7001";
  m.client_addr = "10.0.0." + id.substr(1) + ":6001";
  m.version = 1;
  m.status = MemberStatus::kUp;
  return m;
}

// Four up members n1..n4, settled, as n1 saved it before it stopped.
View SavedView() {
  View v;
  for (const char* id : {"n1", "n2", "n3", "n4"}) v[id] = Member(id);
  const uint64_t fp = WriteFingerprint(v);
  for (auto& [id, m] : v) m.synced = m.seen = fp;
  return v;
}

// n1, restarted from `saved` (a new incarnation) or, with from_saved_view false, as the
// same view given to a fresh process.
struct GateFixture {
  explicit GateFixture(const View& saved, bool from_saved_view = true) : store(engine, false) {
    EXPECT_TRUE(store.EnableMerkle(kPartitions).ok());
    NodeConfig config;
    config.partitions = kPartitions;
    config.core.n = 3;
    config.from_saved_view = from_saved_view;
    Gossiper g(Member("n1", 2), {});
    g.Restore(saved);
    node = std::make_unique<Node>(std::move(g), store, config);
    for (const auto& [id, m] : saved) node->SetReachable(id, true);
    node->Start();
    (void)node->TakeOutbox(0, 0);
  }
  // `from` gossips its view; `heard_us` says whether it already holds n1's new
  // incarnation (it heard n1 since the restart); an Ack says whether `from` is gated.
  void GossipFrom(const std::string& from, bool heard_us, bool syn = false,
                  bool from_gated = false) {
    View v = node->view();
    v["n1"].incarnation = heard_us ? node->self_state().incarnation : 1;
    v[from].heartbeat += 1;
    if (syn) {
      node->OnPeerMessage(from, GossipSyn{v}, 10, 10);
    } else {
      node->OnPeerMessage(from, GossipAck{v, from_gated}, 10, 10);
    }
  }
  Status ClientGet() {
    node->StartGet(77, "k", 2, 0, 20);
    NodeOutbox out = node->TakeOutbox(20, 20);
    for (const ClientResult& r : out.results) {
      if (r.client_req == 77) return r.status;
    }
    return Status::Ok();  // not answered at once: it went to the replicas
  }
  // A key n2 is a primary of, so the peer checks pass Paxos messages from n2.
  std::string KeyOfN2() const {
    for (int i = 0;; ++i) {
      const std::string key = "k" + std::to_string(i);
      const auto replicas = node->core().Replicas(key);
      if (std::find(replicas.begin(), replicas.end(), "n2") != replicas.end()) return key;
    }
  }
  storage::MemEngine engine;
  server::Store store;
  std::unique_ptr<Node> node;
};

TEST(NodeGateTest, ARestartedNodeAnswersClientsTryAgainUntilAMajorityHeardIt) {
  GateFixture f(SavedView());
  EXPECT_EQ(f.node->GateSummary(), "waiting heard=1 need=3 members=4");
  Status st = f.ClientGet();
  EXPECT_EQ(st.code(), Status::Code::kTryAgain);
  EXPECT_EQ(st.message(),
            "node restarted from a saved view; waiting to hear from 3 of 4 members (1 heard)");
  f.node->StartPut(78, "k", WriteSpec{}, 2, 0, 20);
  f.node->StartConsistent(79, "k", true, WriteSpec{}, 20);
  NodeOutbox out = f.node->TakeOutbox(20, 20);
  ASSERT_EQ(out.results.size(), 2u);
  for (const ClientResult& r : out.results) EXPECT_EQ(r.status.code(), Status::Code::kTryAgain);
  EXPECT_TRUE(out.sends.empty());  // nothing was coordinated

  // Gossip from a peer that has not heard the new incarnation does not count.
  f.GossipFrom("n2", /*heard_us=*/false, /*syn=*/true);
  EXPECT_EQ(f.node->GateSummary(), "waiting heard=1 need=3 members=4");
  f.GossipFrom("n2", true);
  EXPECT_EQ(f.node->GateSummary(), "waiting heard=2 need=3 members=4");
  f.GossipFrom("n2", true);  // the same peer twice is one
  EXPECT_EQ(f.ClientGet().code(), Status::Code::kTryAgain);
  f.GossipFrom("n4", true, /*syn=*/true);
  EXPECT_EQ(f.node->GateSummary(), "open");
  EXPECT_TRUE(f.node->Serving().ok());
  EXPECT_TRUE(f.ClientGet().ok());
  EXPECT_EQ(f.node->stats().gate_refused, 4u);
}

// A decommission made on a stale view could turn a member this view still shows
// joining, but that is up and holding data elsewhere, straight into left: a gated node
// makes no membership change until its gate opens.
TEST(NodeGateTest, AGatedNodeMakesNoMembershipChange) {
  GateFixture f(SavedView());
  EXPECT_FALSE(f.node->Leave("n4"));
  EXPECT_EQ(f.node->view().at("n4").status, MemberStatus::kUp);
  f.GossipFrom("n2", true);
  f.GossipFrom("n3", true);
  ASSERT_EQ(f.node->GateSummary(), "open");
  EXPECT_TRUE(f.node->Leave("n4"));
  EXPECT_EQ(f.node->view().at("n4").status, MemberStatus::kLeaving);
}

TEST(NodeGateTest, AGatedNodeRefusesToVoteButGossipPasses) {
  GateFixture f(SavedView());
  // Each request from n2, stamped with the current ring so the fence passes it.
  auto from_n2 = [&](auto msg, uint64_t req_id, const std::string& key) {
    msg.ring_version = OwnershipVersion(f.node->view());
    msg.req_id = req_id;
    msg.key = key;
    f.node->OnPeerMessage("n2", msg, 10, 10);
  };
  from_n2(PaxosPrepare{}, 5, f.KeyOfN2());
  from_n2(ReplicaWrite{}, 6, "k");
  from_n2(ReplicaRead{}, 7, "k");
  from_n2(ForwardConsistent{}, 8, "k");
  NodeOutbox out = f.node->TakeOutbox(10, 10);
  EXPECT_TRUE(out.sends.empty());
  ASSERT_EQ(out.direct.size(), 4u);
  const auto* promise = std::get_if<PaxosPromise>(&out.direct[0].second);
  ASSERT_NE(promise, nullptr);
  EXPECT_EQ(promise->req_id, 5u);
  EXPECT_FALSE(promise->error.empty());
  const auto* ack = std::get_if<ReplicaWriteAck>(&out.direct[1].second);
  ASSERT_NE(ack, nullptr);
  EXPECT_FALSE(ack->ok);
  const auto* rr = std::get_if<ReplicaReadReply>(&out.direct[2].second);
  ASSERT_NE(rr, nullptr);
  EXPECT_FALSE(rr->ok);
  const auto* cr = std::get_if<ConsistentResult>(&out.direct[3].second);
  ASSERT_NE(cr, nullptr);
  EXPECT_EQ(cr->code, static_cast<uint32_t>(Status::Code::kUnavailable));  // not applied
  EXPECT_NE(cr->message.find("restarted from a saved view"), std::string::npos);
  EXPECT_EQ(f.node->stats().gate_refused, 4u);

  // Gossip is answered while gated.
  f.GossipFrom("n3", false, /*syn=*/true);
  out = f.node->TakeEffects();
  ASSERT_EQ(out.direct.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<GossipAck>(out.direct[0].second));
}

TEST(NodeGateTest, AGatedNodeGossipsToEveryMemberNotHeardYetEachRound) {
  GateFixture f(SavedView());
  f.GossipFrom("n2", true);
  (void)f.node->TakeEffects();
  f.node->StartTicks(0);
  f.node->Tick(f.node->config().gossip_interval_ms, 0);
  NodeOutbox out = f.node->TakeEffects();
  std::set<std::string> to;
  for (const auto& [id, msg] : out.direct) {
    if (std::holds_alternative<GossipSyn>(msg)) to.insert(id);
  }
  // n3 and n4 (not heard yet) at least; n2 only if it was the round's random peer.
  EXPECT_TRUE(to.count("n3") && to.count("n4"));
  EXPECT_LE(to.size(), 3u);
}

TEST(NodeGateTest, AFreshNodeAndASingleMemberViewAreNotGated) {
  GateFixture fresh(SavedView(), /*from_saved_view=*/false);
  EXPECT_EQ(fresh.node->GateSummary(), "open");
  View alone;
  alone["n1"] = Member("n1");
  GateFixture single(alone);
  EXPECT_EQ(single.node->GateSummary(), "open");
  EXPECT_NE(single.ClientGet().code(), Status::Code::kTryAgain);  // served (R=2 of 1 fails as usual)
}

// A whole cluster restarted at once: every node is gated. Gated peers count toward the
// majority, but a majority of gated peers alone is also what stale nodes restarted
// together see (DESIGN 4.3.1), so with no serving peer heard each node waits for every
// active member of its view -- all back, it gets out.
TEST(NodeGateTest, GatedPeersCountSoAWholeClusterRestartGetsOut) {
  GateFixture f(SavedView());
  for (const char* peer : {"n2", "n3"}) f.GossipFrom(peer, true, /*syn=*/false, /*from_gated=*/true);
  EXPECT_EQ(f.node->GateSummary(), "waiting heard=3 need=3 members=4 serving=0");
  Status st = f.ClientGet();
  EXPECT_EQ(st.code(), Status::Code::kTryAgain);
  EXPECT_EQ(st.message(),
            "node restarted from a saved view; heard 3 of 4 members, all restarted too: waiting "
            "for a member that serves, or for all 4 (ITSUKA.GATE OPEN overrides)");
  f.GossipFrom("n4", true, /*syn=*/true);  // a Syn does not say whether n4 serves
  EXPECT_EQ(f.node->GateSummary(), "open");
}

// One peer that serves among the majority heard is enough: its view is the cluster's.
TEST(NodeGateTest, AMajorityWithOneServingPeerOpensTheGate) {
  GateFixture f(SavedView());
  f.GossipFrom("n2", true, /*syn=*/false, /*from_gated=*/true);
  f.GossipFrom("n3", true, /*syn=*/true);  // heard, but serving or not is unknown
  EXPECT_EQ(f.node->GateSummary(), "waiting heard=3 need=3 members=4 serving=0");
  EXPECT_EQ(f.node->gate().serving, 0u);
  f.GossipFrom("n3", true, /*syn=*/false, /*from_gated=*/false);
  EXPECT_EQ(f.node->GateSummary(), "open");
}

// The known gap of the first gate, closed: three members, two of them (n1, n2)
// decommissioned while down through n3, restarted together and cut off from n3. They
// are a majority of their stale view and hear each other, but both are gated, so
// neither opens; once n3 is heard its view makes n1 left.
TEST(NodeGateTest, TwoStaleNodesRestartedTogetherDoNotOpenEachOther) {
  View saved;
  for (const char* id : {"n1", "n2", "n3"}) saved[id] = Member(id);
  GateFixture f(saved);
  for (int i = 0; i < 3; ++i) f.GossipFrom("n2", true, /*syn=*/false, /*from_gated=*/true);
  EXPECT_EQ(f.node->GateSummary(), "waiting heard=2 need=2 members=3 serving=0");
  EXPECT_EQ(f.ClientGet().code(), Status::Code::kTryAgain);
  View v = f.node->view();
  v["n1"].incarnation = f.node->self_state().incarnation;
  for (const char* gone : {"n1", "n2"}) {
    v[gone].version = 3;
    v[gone].status = MemberStatus::kLeft;
  }
  f.node->OnPeerMessage("n3", GossipAck{v, false}, 10, 10);
  EXPECT_EQ(f.node->GateSummary(), "left");
}

// A gated peer whose view is newer teaches it before anything opens: here n2 knows of
// a joiner n5, so "every member heard" now means five.
TEST(NodeGateTest, AGatedPeersNewerViewIsLearnedBeforeTheGateOpens) {
  GateFixture f(SavedView());
  View v = f.node->view();
  v["n1"].incarnation = f.node->self_state().incarnation;
  v["n5"] = Member("n5");
  v["n5"].version = 2;
  v["n5"].status = MemberStatus::kJoining;
  f.node->OnPeerMessage("n2", GossipAck{v, true}, 10, 10);
  for (const char* peer : {"n3", "n4"}) f.GossipFrom(peer, true, /*syn=*/false, /*from_gated=*/true);
  EXPECT_EQ(f.node->GateSummary(), "waiting heard=4 need=3 members=5 serving=0");
  f.GossipFrom("n5", true, /*syn=*/false, /*from_gated=*/false);
  EXPECT_EQ(f.node->GateSummary(), "open");
}

// Its GossipAcks say whether it serves: gated, then open, then left.
TEST(NodeGateTest, ItsAcksSayWhetherItServes) {
  GateFixture f(SavedView());
  auto acked_gated = [&]() {
    f.GossipFrom("n4", false, /*syn=*/true);
    NodeOutbox out = f.node->TakeEffects();
    for (const auto& [to, msg] : out.direct) {
      if (const auto* ack = std::get_if<GossipAck>(&msg)) return ack->sender_gated;
    }
    ADD_FAILURE() << "no GossipAck";
    return false;
  };
  EXPECT_TRUE(acked_gated());
  for (const char* peer : {"n2", "n3"}) f.GossipFrom(peer, true);
  ASSERT_EQ(f.node->GateSummary(), "open");
  EXPECT_FALSE(acked_gated());
  View v = f.node->view();
  v["n1"].version = 3;
  v["n1"].status = MemberStatus::kLeft;
  f.node->OnPeerMessage("n2", GossipAck{v, false}, 10, 10);
  ASSERT_EQ(f.node->GateSummary(), "left");
  EXPECT_TRUE(acked_gated());
}

// A gated node keeps sending a Syn each round to a peer heard only by its Syns, until
// an Ack says that peer serves.
TEST(NodeGateTest, AGatedNodeAsksPeersNotKnownToServeEachRound) {
  GateFixture f(SavedView());
  f.GossipFrom("n2", true, /*syn=*/true);
  f.GossipFrom("n3", true, /*syn=*/false, /*from_gated=*/true);
  f.GossipFrom("n4", true, /*syn=*/false, /*from_gated=*/false);
  ASSERT_EQ(f.node->GateSummary(), "open");  // n4 serves
  GateFixture g(SavedView());
  g.GossipFrom("n2", true, /*syn=*/true);
  g.GossipFrom("n3", true, /*syn=*/false, /*from_gated=*/true);
  (void)g.node->TakeEffects();
  g.node->StartTicks(0);
  g.node->Tick(g.node->config().gossip_interval_ms, 0);
  std::set<std::string> to;
  for (const auto& [id, msg] : g.node->TakeEffects().direct) {
    if (std::holds_alternative<GossipSyn>(msg)) to.insert(id);
  }
  EXPECT_EQ(to, (std::set<std::string>{"n2", "n3", "n4"}));
}

// The operator's override opens the gate at once, logged, and only a gated node's.
TEST(NodeGateTest, TheOperatorCanOpenTheGate) {
  GateFixture f(SavedView());
  f.GossipFrom("n2", true, /*syn=*/false, /*from_gated=*/true);
  ASSERT_TRUE(f.node->OpenGate());
  EXPECT_EQ(f.node->GateSummary(), "open");
  EXPECT_TRUE(f.node->Serving().ok());
  size_t said = 0;
  for (const LogLine& l : f.node->TakeEffects().logs) {
    said += l.level == LogLine::Level::kWarn &&
            l.text.find("opened by the operator") != std::string::npos;
  }
  EXPECT_EQ(said, 1u);
  EXPECT_FALSE(f.node->OpenGate());  // already open
  View saved = SavedView();
  saved["n1"].version = 3;
  saved["n1"].status = MemberStatus::kLeft;
  GateFixture left(saved);
  EXPECT_FALSE(left.node->OpenGate());  // a left node stays left
  EXPECT_EQ(left.node->GateSummary(), "left");
}

// Members the node learns are left leave the count: a node restarted after two of its
// four members were decommissioned gets out by hearing the one remaining.
TEST(NodeGateTest, MembersLearnedLeftNoLongerCount) {
  GateFixture f(SavedView());
  View v = f.node->view();
  v["n1"].incarnation = f.node->self_state().incarnation;
  for (const char* gone : {"n3", "n4"}) {
    v[gone].version = 3;
    v[gone].status = MemberStatus::kLeft;
  }
  f.node->OnPeerMessage("n2", GossipAck{v}, 10, 10);
  EXPECT_EQ(f.node->GateSummary(), "open");
}

TEST(NodeGateTest, ANodeThatLearnsItIsLeftStopsServingAndSaysSoOnce) {
  GateFixture f(SavedView());
  View v = f.node->view();
  v["n1"].incarnation = f.node->self_state().incarnation;
  v["n1"].version = 3;
  v["n1"].status = MemberStatus::kLeft;
  f.node->OnPeerMessage("n2", GossipAck{v}, 10, 10);
  ASSERT_EQ(f.node->self_state().status, MemberStatus::kLeft);
  EXPECT_EQ(f.node->GateSummary(), "left");
  NodeOutbox out = f.node->TakeEffects();
  size_t said = 0;
  for (const LogLine& l : out.logs) said += l.text.find("has left the cluster") != std::string::npos;
  EXPECT_EQ(said, 1u);
  Status st = f.ClientGet();
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_NE(st.message().find("decommissioned"), std::string::npos);
  PaxosPrepare prepare;
  prepare.ring_version = OwnershipVersion(f.node->view());  // current: the fence passes it
  prepare.req_id = 5;
  prepare.key = f.KeyOfN2();
  f.node->OnPeerMessage("n2", prepare, 10, 10);
  out = f.node->TakeEffects();
  ASSERT_EQ(out.direct.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<PaxosPromise>(out.direct[0].second));
  // More gossip does not log it again.
  f.GossipFrom("n3", true);
  for (const LogLine& l : f.node->TakeEffects().logs) {
    EXPECT_EQ(l.text.find("has left the cluster"), std::string::npos);
  }
}

TEST(NodeGateTest, ANodeRestartedAsLeftStaysLeft) {
  View saved = SavedView();
  saved["n1"].version = 3;
  saved["n1"].status = MemberStatus::kLeft;
  GateFixture f(saved);
  EXPECT_EQ(f.node->GateSummary(), "left");
  EXPECT_EQ(f.ClientGet().code(), Status::Code::kUnavailable);
}

// A saved repair job waits for the gate (its ring may be stale), and so does an
// operator's: it resumes at the first housekeeping tick after the gate opened.
TEST(NodeGateTest, ASavedRepairResumesOnlyOnceTheGateOpened) {
  GateFixture f(SavedView());
  RepairProgress saved;
  saved.job.id = 9;
  saved.job.partitions = {0, 1};
  f.node->ResumeRepair(saved, 0);
  EXPECT_FALSE(f.node->repair().running());
  EXPECT_EQ(f.node->StartRepair(saved, 0).code(), Status::Code::kTryAgain);
  f.node->StartTicks(0);
  f.node->Tick(f.node->config().housekeeping_ms, 0);
  EXPECT_FALSE(f.node->repair().running());
  for (const char* peer : {"n2", "n3"}) f.GossipFrom(peer, true);
  ASSERT_EQ(f.node->GateSummary(), "open");
  f.node->Tick(2 * f.node->config().housekeeping_ms, 0);
  EXPECT_TRUE(f.node->repair().running());
  EXPECT_EQ(f.node->repair().progress().job.id, 9u);
}

}  // namespace
}  // namespace itsuka::core
