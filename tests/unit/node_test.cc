// core::Node (core/node.h): the glue between NodeCore, Gossiper and RepairDriver.
#include "core/node.h"

#include <gtest/gtest.h>

#include "common/hash.h"
#include "server/store.h"
#include "storage/mem_engine.h"

namespace itsuka::core {
namespace {

constexpr uint32_t kPartitions = 16;

MemberState Self(const std::string& id) {
  MemberState m;
  m.id = id;
  m.incarnation = 1;
  m.peer_addr = "10.0.0.1:7001";
  m.client_addr = "10.0.0.1:6001";
  return m;
}

struct Fixture {
  explicit Fixture(std::vector<std::string> seeds = {}, NodeConfig config = {}) : store(engine, false) {
    EXPECT_TRUE(store.EnableMerkle(kPartitions).ok());
    config.partitions = kPartitions;
    config.core.n = 3;
    Gossiper g(Self("n1"), std::move(seeds));
    g.Advance();  // a node without seeds starts its own cluster at once
    node = std::make_unique<Node>(std::move(g), store, config);
  }
  // The node hears of `m` from `m` itself, in a gossip ack (which it does not answer).
  void HearOf(const MemberState& m) {
    View incoming = node->view();
    incoming[m.id] = m;
    node->OnPeerMessage(m.id, GossipAck{incoming}, 10, 10);
  }
  storage::MemEngine engine;
  server::Store store;
  std::unique_ptr<Node> node;
};

size_t CountGossipSyn(const NodeOutbox& out) {
  size_t n = 0;
  for (const auto& [to, msg] : out.direct) n += std::holds_alternative<GossipSyn>(msg);
  return n;
}

TEST(NodeTest, AViewChangeRebuildsBothRingsAndConnectsToNewMembers) {
  Fixture f;
  f.node->Start();
  NodeOutbox first = f.node->TakeEffects();
  EXPECT_TRUE(first.view_changed);
  ASSERT_TRUE(f.node->core().ring().has_value());
  EXPECT_EQ(f.node->core().ring()->members(), std::vector<std::string>{"n1"});
  ASSERT_EQ(first.logs.size(), 1u);
  EXPECT_EQ(first.logs[0].text.rfind("ring version ", 0), 0u) << first.logs[0].text;

  // n2 joins: its gossip about itself is accepted; it will hold data (write ring)
  // but does not yet (read ring).
  MemberState n2 = Self("n2");
  n2.peer_addr = "10.0.0.2:7001";
  n2.version = 1;
  n2.status = MemberStatus::kJoining;
  View incoming = f.node->view();
  incoming["n2"] = n2;
  f.node->OnPeerMessage("n2", GossipSyn{incoming}, 10, 10);
  NodeOutbox out = f.node->TakeEffects();
  EXPECT_TRUE(out.view_changed);
  EXPECT_EQ(f.node->core().ring()->members(), std::vector<std::string>{"n1"});
  EXPECT_EQ(f.node->core().write_ring()->members(), (std::vector<std::string>{"n1", "n2"}));
  ASSERT_EQ(out.connect.size(), 1u);
  EXPECT_EQ(out.connect[0].id, "n2");
  EXPECT_EQ(out.connect[0].host, "10.0.0.2");
  EXPECT_EQ(out.connect[0].port, 7001);
  ASSERT_EQ(out.direct.size(), 1u);  // the push-pull answer
  EXPECT_EQ(out.direct[0].first, "n2");
  ASSERT_TRUE(std::holds_alternative<GossipAck>(out.direct[0].second));
  EXPECT_EQ(std::get<GossipAck>(out.direct[0].second).view.count("n2"), 1u);
  EXPECT_FALSE(out.flush_direct);
}

TEST(NodeTest, AMemberWithAWildcardAddressIsNotConnected) {
  Fixture f;
  f.node->Start();
  (void)f.node->TakeEffects();
  MemberState n2 = Self("n2");
  n2.peer_addr = "0.0.0.0:7001";
  f.HearOf(n2);
  NodeOutbox out = f.node->TakeEffects();
  EXPECT_TRUE(out.connect.empty());
  EXPECT_TRUE(out.direct.empty());  // an ack is not answered
}

TEST(NodeTest, ARepairRequestIsAnsweredAfterTheCommitNotAtOnce) {
  Fixture f;
  f.node->Start();
  MemberState n2 = Self("n2");
  n2.peer_addr = "10.0.0.2:7001";
  f.HearOf(n2);
  (void)f.node->TakeEffects();
  TreeRequest req;
  req.req_id = 5;
  req.indices = {0};
  f.node->OnPeerMessage("n2", req, 20, 20);
  EXPECT_TRUE(f.node->TakeEffects().direct.empty());
  EXPECT_TRUE(f.node->HasOutput());
  NodeOutbox out = f.node->TakeOutbox(20, 20);
  ASSERT_EQ(out.sends.size(), 1u);
  EXPECT_EQ(out.sends[0].first, "n2");
  const auto* reply = std::get_if<TreeReply>(&out.sends[0].second);
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->req_id, 5u);
  EXPECT_FALSE(f.node->HasOutput());
}

// The driver's requests to its own node are answered in the node, not over the network.
// The store's Merkle trees only show what is committed (as server::Store's do), so a
// request made while a write is staged waits for the commit: answered at once, the
// tree would miss the write and the pair would look in sync (in the repair simulation
// a key a push had just merged into the coordinator never reached the third replica).
TEST(NodeTest, ARepairRequestToItselfWaitsForTheCommitOfWhatIsStaged) {
  Fixture f;
  f.node->Start();
  MemberState n2 = Self("n2");
  n2.peer_addr = "10.0.0.2:7001";
  n2.version = 1;
  n2.status = MemberStatus::kUp;
  f.HearOf(n2);
  f.node->SetReachable("n2", true);
  (void)f.node->TakeEffects();
  ASSERT_EQ(f.node->core().ring()->members(), (std::vector<std::string>{"n1", "n2"}));
  const std::string key = "staged";
  const uint32_t p = static_cast<uint32_t>(
      (static_cast<unsigned __int128>(Hash64(key)) * kPartitions) >> 64);
  f.store.Stage(key, ApplyWrite(Object(), {}, "n1", NewVersion{false, "v", 0, 1}, {}).value());

  RepairProgress progress;
  progress.job.id = 1;
  progress.job.partitions = {p};
  ASSERT_TRUE(f.node->StartRepair(progress, 20).ok());
  const std::vector<LogLine> logs = f.node->TakeEffects().logs;
  ASSERT_EQ(logs.size(), 1u);  // the operator sees the run start in the log
  EXPECT_EQ(logs[0].text, "repair 1 started: 1 partition(s)");
  NodeOutbox first = f.node->TakeOutbox(20, 20);
  ASSERT_EQ(first.sends.size(), 1u);  // the tree request to n2; its own one waits
  EXPECT_EQ(first.sends[0].first, "n2");
  const auto* to_n2 = std::get_if<TreeRequest>(&first.sends[0].second);
  ASSERT_NE(to_n2, nullptr);
  EXPECT_TRUE(f.node->HasOutput());
  ASSERT_TRUE(f.store.Commit().ok());

  // n2 has nothing: its tree is all zeros, n1's (once the write is in it) is not.
  TreeReply empty;
  empty.req_id = to_n2->req_id;
  empty.ok = true;
  empty.depth = f.store.MerkleDepth();
  empty.hashes.assign(to_n2->indices.size(), 0);
  f.node->OnPeerMessage("n2", empty, 30, 30);
  NodeOutbox second = f.node->TakeOutbox(30, 30);
  EXPECT_TRUE(f.node->repair().running());
  // The trees differ: the driver descends n2's (one level down, or to the leaves).
  ASSERT_EQ(second.sends.size(), 1u);
  EXPECT_EQ(second.sends[0].first, "n2");
  const auto* next = std::get_if<TreeRequest>(&second.sends[0].second);
  const bool descends = (next != nullptr && next->level > to_n2->level) ||
                        std::holds_alternative<LeafRequest>(second.sends[0].second);
  EXPECT_TRUE(descends) << "the pair looked in sync: the tree missed the write (message type "
                        << second.sends[0].second.index() << ")";
}

TEST(NodeTest, AFinishedTransferIsPublishedOnlyWhenNothingIsStaged) {
  NodeConfig config;
  config.gossip_interval_ms = 100;
  Fixture f({}, config);
  f.node->Start();
  f.node->StartTicks(0);
  const uint64_t fp = WriteFingerprint(f.node->view());
  ASSERT_NE(fp, 0u);
  ASSERT_EQ(f.node->core().Synced(), fp);  // a lone node has nothing to transfer
  f.store.Stage("k", Object());
  ASSERT_TRUE(f.store.HasStaged());
  f.node->Tick(100, 100);
  EXPECT_NE(f.node->self_state().synced, fp) << "published with a write not yet committed";
  ASSERT_TRUE(f.store.Commit().ok());
  f.node->Tick(200, 200);
  EXPECT_EQ(f.node->self_state().synced, fp);
  bool logged = false;
  for (const LogLine& l : f.node->TakeEffects().logs) {
    logged |= l.text.rfind("holds every partition of ring ", 0) == 0;
  }
  EXPECT_TRUE(logged);
}

TEST(NodeTest, AMessageFromANonMemberIsRefusedWithAReply) {
  Fixture f;
  f.node->Start();
  (void)f.node->TakeEffects();
  f.node->OnPeerMessage("stranger", ReplicaRead{7, "k"}, 10, 10);
  NodeOutbox out = f.node->TakeEffects();
  EXPECT_EQ(f.node->stats().peer_senders_refused, 1u);
  ASSERT_EQ(out.direct.size(), 1u);
  EXPECT_EQ(out.direct[0].first, "stranger");
  const auto* reply = std::get_if<ReplicaReadReply>(&out.direct[0].second);
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->req_id, 7u);
  EXPECT_FALSE(reply->ok);
  EXPECT_FALSE(reply->error.empty());
  ASSERT_EQ(out.logs.size(), 1u);
  EXPECT_EQ(out.logs[0].level, LogLine::Level::kWarn);
  EXPECT_EQ(out.logs[0].text.rfind("peer stranger: message type ", 0), 0u) << out.logs[0].text;
  // Nothing reached the core: nothing gated to send.
  EXPECT_FALSE(f.node->HasOutput());

  // A second refusal within a second is counted, not logged.
  f.node->OnPeerMessage("stranger", ReplicaRead{8, "k"}, 500, 500);
  out = f.node->TakeEffects();
  EXPECT_EQ(out.direct.size(), 1u);
  EXPECT_TRUE(out.logs.empty());
  f.node->OnPeerMessage("stranger", ReplicaRead{9, "k"}, 1200, 1200);
  out = f.node->TakeEffects();
  ASSERT_EQ(out.logs.size(), 1u);
  EXPECT_NE(out.logs[0].text.find("(and 1 more refusals since the last warning)"), std::string::npos);
}

TEST(NodeTest, TheTickCadenceRunsEachSubTimerAtItsInterval) {
  NodeConfig config;
  config.core_tick_ms = 20;
  config.gossip_interval_ms = 100;
  config.housekeeping_ms = 1000;
  Fixture f({"n2"}, config);  // the unheard seed is the gossip peer
  f.node->Start();
  (void)f.node->TakeEffects();
  f.node->StartTicks(0);
  EXPECT_EQ(f.node->NextWakeup(), 20);
  f.node->Tick(19, 19);  // nothing is due yet
  EXPECT_EQ(f.node->NextWakeup(), 20);
  f.node->Tick(23, 23);  // late: due again an interval after it ran
  EXPECT_EQ(f.node->NextWakeup(), 43);
  size_t rounds = 0;
  for (int64_t t = 24; t <= 1000; ++t) {
    f.node->Tick(t, t);
    NodeOutbox out = f.node->TakeEffects();
    const size_t syn = CountGossipSyn(out);
    if (syn > 0) {
      EXPECT_EQ(t % 100, 0) << "gossip round at " << t;
      EXPECT_TRUE(out.flush_direct);
      EXPECT_EQ(out.direct[0].first, "n2");
    }
    rounds += syn;
  }
  EXPECT_EQ(rounds, 10u);

  // After shutdown begins the core still ticks, but gossip stops.
  f.node->BeginShutdown();
  for (int64_t t = 1001; t <= 1500; ++t) {
    f.node->Tick(t, t);
    EXPECT_EQ(CountGossipSyn(f.node->TakeEffects()), 0u);
  }
}

TEST(NodeTest, HousekeepingStartsTheBackgroundRepairOnItsSchedule) {
  NodeConfig config;
  config.housekeeping_ms = 1000;
  config.repair_interval_ms = 2000;
  Fixture f({}, config);
  f.node->Start();
  f.node->StartTicks(0);
  int64_t started_at = -1;
  for (int64_t t = 1; t <= 2500 && started_at < 0; ++t) {
    f.node->Tick(t, t);
    for (const LogLine& l : f.node->TakeEffects().logs) {
      if (l.text == "background repair of the partitions this node owns") started_at = t;
    }
  }
  EXPECT_EQ(started_at, 2000);  // the housekeeping tick at 1000 was too early
  EXPECT_EQ(f.node->repair_runs().state, "running");
  // A lone node's partitions have one replica each: the run is over at once, and
  // its books are closed in the next round.
  (void)f.node->TakeOutbox(2001, 2001);
  EXPECT_FALSE(f.node->repair().running());
  EXPECT_EQ(f.node->repair_runs().state, "done");
  EXPECT_EQ(f.node->repair_runs().completed, 1u);
}

TEST(NodeTest, ClockCheckCountsReachableRingMembersOnly) {
  NodeConfig config;
  config.max_clock_offset_ms = 500;
  Fixture f({}, config);
  f.node->Start();
  int64_t typical = -1;
  const auto far = [](const std::string&, OffsetSample* s) {
    s->offset_ms = 3600000;
    s->uncertainty_ms = 1;
    return true;
  };
  // The only ring member is this node: no peer to compare with.
  EXPECT_TRUE(f.node->ClockCheck(far, &typical).ok());
  EXPECT_EQ(typical, 0);
}

}  // namespace
}  // namespace itsuka::core
