// core::Node (core/node.h): the glue between NodeCore, Gossiper and RepairDriver.
#include "core/node.h"

#include <gtest/gtest.h>

#include "common/hash.h"
#include "core/peer_checks.h"
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
  explicit Fixture(std::vector<std::string> seeds = {}, NodeConfig config = {},
                   const std::string& id = "n1")
      : store(engine, false) {
    EXPECT_TRUE(store.EnableMerkle(kPartitions).ok());
    config.partitions = kPartitions;
    config.core.n = 3;
    Gossiper g(Self(id), std::move(seeds));
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
  const uint32_t p = f.store.PartitionOfKey(key);
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

// ---- The ring fence (issue 16; core/peer_checks.h) ----

// n1 and n2 both up; then n1 (only) hears that n3 joins: n2's view is stale for n1.
struct FencePair {
  FencePair() : a({}, {}, "n1"), b({}, {}, "n2") {
    a.node->Start();
    b.node->Start();
    MemberState n1 = a.node->self_state(), n2 = b.node->self_state();
    a.HearOf(n2);
    b.HearOf(n1);
    a.node->SetReachable("n2", true);
    b.node->SetReachable("n1", true);
    (void)a.node->TakeOutbox(10, 10);
    (void)b.node->TakeOutbox(10, 10);
    MemberState n3 = Self("n3");
    n3.version = 1;
    n3.status = MemberStatus::kJoining;
    a.HearOf(n3);
    (void)a.node->TakeEffects();
  }
  uint64_t VersionOf(const Fixture& f) const { return OwnershipVersion(f.node->view()); }
  Fixture a, b;
};

// Delivers what `from` addressed to `to`'s node; returns how many.
size_t Deliver(const std::vector<std::pair<std::string, PeerMessage>>& msgs, const Fixture& from,
               Fixture& to, int64_t now_ms) {
  size_t n = 0;
  for (const auto& [dest, msg] : msgs) {
    if (dest != to.node->self()) continue;
    to.node->OnPeerMessage(from.node->self(), msg, now_ms, now_ms);
    ++n;
  }
  return n;
}

TEST(NodeFenceTest, EveryFencedRequestFromAStaleSenderIsRefusedCountedAndAnswered) {
  FencePair p;
  const uint64_t mine = p.VersionOf(p.a), stale = p.VersionOf(p.b);
  ASSERT_GT(mine, stale);
  const std::vector<PeerMessage> requests = {
      ReplicaWrite{1, "k", Object(), "", stale},
      ReplicaRead{2, "k", stale},
      ForwardPut{3, "k", WriteSpec{}, 1, 0, Object(), stale},
      ForwardConsistent{4, "k", true, WriteSpec{}, stale},
      PaxosPrepare{5, "k", Ballot{1, "n2"}, 0, 0, stale},
      PaxosAccept{6, "k", Ballot{1, "n2"}, Object(), 0, 0, stale},
      PaxosCommit{"k", Ballot{1, "n2"}, Object(), stale},
  };
  uint64_t refused = 0;
  for (const PeerMessage& m : requests) {
    p.a.node->OnPeerMessage("n2", m, 1000 * (refused + 1), 0);
    ++refused;
    EXPECT_EQ(p.a.node->stats().peer_stale_ring_refused, refused) << "message type " << m.index();
    EXPECT_EQ(p.a.node->stats().peer_senders_refused, refused);
    NodeOutbox out = p.a.node->TakeEffects();
    // The sender is told at once (the reply, if the request has one, carries this
    // node's version) and is sent this node's view to catch up with.
    EXPECT_EQ(CountGossipSyn(out), 1u) << "message type " << m.index();
    for (const auto& [to, reply] : out.direct) {
      EXPECT_EQ(to, "n2");
      if (std::holds_alternative<GossipSyn>(reply)) continue;
      EXPECT_EQ(RingVersionOf(reply), std::optional<uint64_t>(mine));
    }
    const bool answered = !std::holds_alternative<PaxosCommit>(m);
    EXPECT_EQ(out.direct.size(), answered ? 2u : 1u) << "message type " << m.index();
    EXPECT_FALSE(p.a.node->HasOutput()) << "a stale request reached the core";
  }
  // Catch-ups to one peer are rate-limited.
  p.a.node->OnPeerMessage("n2", ReplicaRead{9, "k", stale}, 7000 + 10, 0);
  EXPECT_EQ(CountGossipSyn(p.a.node->TakeEffects()), 0u);
  EXPECT_EQ(p.a.node->stats().ring_catchups, 7u);
}

TEST(NodeFenceTest, TheStaleSenderCatchesUpAndItsRetrySucceeds) {
  FencePair p;
  ASSERT_LT(p.VersionOf(p.b), p.VersionOf(p.a));
  // n2 reads a key from both replicas (R=2) on its stale ring.
  p.b.node->StartGet(1, "k", 2, 0, 100);
  NodeOutbox sent = p.b.node->TakeOutbox(100, 100);
  ASSERT_EQ(Deliver(sent.sends, p.b, p.a, 100), 1u);
  for (const auto& [to, msg] : sent.sends) {
    EXPECT_EQ(RingVersionOf(msg), std::optional<uint64_t>(p.VersionOf(p.b)));
  }
  EXPECT_EQ(p.a.node->stats().peer_stale_ring_refused, 1u);
  // n1's refusal and its view go back: the read fails at once (not at its timeout),
  // and n2 learns the join, answering the catch-up with its merged view.
  NodeOutbox refusal = p.a.node->TakeOutbox(101, 101);
  ASSERT_EQ(Deliver(refusal.direct, p.a, p.b, 101), 2u);
  NodeOutbox failed = p.b.node->TakeOutbox(101, 101);
  ASSERT_EQ(failed.results.size(), 1u);
  EXPECT_FALSE(failed.results[0].status.ok());
  EXPECT_EQ(p.VersionOf(p.b), p.VersionOf(p.a));
  EXPECT_EQ(p.b.node->view().count("n3"), 1u);
  ASSERT_EQ(Deliver(failed.direct, p.b, p.a, 101), 1u);  // the GossipAck
  (void)p.a.node->TakeOutbox(102, 102);

  // The retry goes out on the current ring and is served.
  p.b.node->StartGet(2, "k", 2, 0, 200);
  NodeOutbox retry = p.b.node->TakeOutbox(200, 200);
  ASSERT_EQ(Deliver(retry.sends, p.b, p.a, 200), 1u);
  EXPECT_EQ(p.a.node->stats().peer_stale_ring_refused, 1u);
  NodeOutbox answer = p.a.node->TakeOutbox(201, 201);
  EXPECT_TRUE(answer.direct.empty());
  ASSERT_EQ(Deliver(answer.sends, p.a, p.b, 201), 1u);
  NodeOutbox done = p.b.node->TakeOutbox(201, 201);
  ASSERT_EQ(done.results.size(), 1u);
  EXPECT_TRUE(done.results[0].status.ok()) << done.results[0].status.ToString();
}

TEST(NodeFenceTest, AReceiverBehindTheSenderAdmitsItAndCatchesUp) {
  FencePair p;
  // n1 (newer) reads from n2 (stale): n2 serves it and asks n1 for its view.
  p.a.node->StartGet(1, "k", 2, 0, 100);
  NodeOutbox sent = p.a.node->TakeOutbox(100, 100);
  ASSERT_EQ(Deliver(sent.sends, p.a, p.b, 100), 1u);
  EXPECT_EQ(p.b.node->stats().peer_stale_ring_refused, 0u);
  NodeOutbox out = p.b.node->TakeOutbox(100, 100);
  EXPECT_EQ(CountGossipSyn(out), 1u);
  ASSERT_EQ(out.sends.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<ReplicaReadReply>(out.sends[0].second));
  // The reply carries the replica's (older) version; n1 does not refuse replies.
  EXPECT_EQ(RingVersionOf(out.sends[0].second), std::optional<uint64_t>(p.VersionOf(p.b)));
}

TEST(NodeFenceTest, AMemberKnownAsLeftIsRefusedAndCounted) {
  Fixture f;
  f.node->Start();
  MemberState gone = Self("gone");
  gone.version = 3;
  gone.status = MemberStatus::kLeft;
  f.HearOf(gone);
  (void)f.node->TakeEffects();
  const uint64_t mine = OwnershipVersion(f.node->view());
  f.node->OnPeerMessage("gone", ReplicaRead{7, "k", mine}, 100, 100);
  f.node->OnPeerMessage("gone", PaxosPrepare{8, "k", Ballot{1, "gone"}, 0, 0, mine}, 100, 100);
  EXPECT_EQ(f.node->stats().peer_left_sender_refused, 2u);
  EXPECT_EQ(f.node->stats().peer_stale_ring_refused, 0u);
  NodeOutbox out = f.node->TakeEffects();
  EXPECT_EQ(CountGossipSyn(out), 1u);  // told (once) what this node knows of it
  const ReplicaReadReply* reply = nullptr;
  for (const auto& [to, msg] : out.direct) {
    if (reply == nullptr) reply = std::get_if<ReplicaReadReply>(&msg);
  }
  ASSERT_NE(reply, nullptr);
  EXPECT_NE(reply->error.find("(it left the cluster)"), std::string::npos) << reply->error;
  // A stranger is refused and told nothing of the view, whatever version it shows.
  f.node->OnPeerMessage("stranger", ReplicaRead{10, "k", mine + 5}, 150, 150);
  EXPECT_EQ(CountGossipSyn(f.node->TakeEffects()), 0u);
  // The hints it acknowledged writes with still land, on a current ring.
  f.node->OnPeerMessage("gone", ReplicaWrite{9, "k", Object(), "", mine}, 200, 200);
  EXPECT_EQ(f.node->stats().peer_left_sender_refused, 2u);
  EXPECT_TRUE(f.node->HasOutput());
}

}  // namespace
}  // namespace itsuka::core
