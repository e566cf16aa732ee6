// Sloppy quorum and hinted handoff: the ring's fallbacks, the hint ledger and the
// RocksDB-layout hint table (over MemEngine), where NodeCore sends a write whose
// primaries are unreachable, and the replay bookkeeping (rate limit, delete only after
// the target's ack, keep a hint that changed meanwhile, drop expired hints).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/hash.h"
#include "itsuka/config.h"
#include "core/hints.h"
#include "core/node_core.h"
#include "server/hint_table.h"
#include "server/store.h"
#include "storage/mem_engine.h"

namespace itsuka {
namespace {

using core::Hint;
using core::HintLimits;
using core::NodeCore;
using core::Object;
using core::Outbox;
using core::ReplicaWrite;
using core::ReplicaWriteAck;
using core::Ring;
using core::WriteSpec;

Object ObjectWith(const std::string& node, uint64_t counter, const std::string& value) {
  Object empty;
  core::VClock ctx;
  Result<Object> o = core::ApplyWrite(empty, ctx, node, core::NewVersion{false, value, 0, 1},
                                      core::ObjectLimits{});
  Object out = o.value();
  // ApplyWrite issues counter 1; bump for distinct dots.
  for (uint64_t i = 1; i < counter; ++i) {
    out = core::ApplyWrite(out, out.clock, node, core::NewVersion{false, value, 0, 1},
                           core::ObjectLimits{}).value();
  }
  return out;
}

// ---- Ring::Fallbacks ---------------------------------------------------------------

TEST(Fallbacks, FollowThePreferenceListInRingOrderWithoutOverlap) {
  Ring ring = Ring::Create(64, {"a", "b", "c", "d", "e"}, 1).value();
  for (uint32_t p = 0; p < 64; ++p) {
    std::vector<std::string> all = ring.PreferenceList(p, 5);
    std::vector<std::string> pref = ring.PreferenceList(p, 3);
    std::vector<std::string> fb = ring.Fallbacks(p, 3);
    ASSERT_EQ(fb.size(), 2u);
    std::vector<std::string> joined = pref;
    joined.insert(joined.end(), fb.begin(), fb.end());
    EXPECT_EQ(joined, all) << "partition " << p;
  }
  EXPECT_TRUE(ring.Fallbacks(0, 5).empty());
  EXPECT_TRUE(ring.Fallbacks(0, 9).empty());
}

// ---- HintLedger and RateLimiter ----------------------------------------------------

TEST(HintLedger, BoundsKeysAndBytesPerTarget) {
  core::HintLedger ledger(HintLimits{2, 100});
  EXPECT_TRUE(ledger.Fits("b", false, 0, 40));
  ledger.Apply("b", false, 0, true, 40);
  ledger.Apply("b", false, 0, true, 40);
  EXPECT_FALSE(ledger.Fits("b", false, 0, 1));    // a third key
  EXPECT_TRUE(ledger.Fits("b", true, 40, 60));    // growing one within bytes
  EXPECT_FALSE(ledger.Fits("b", true, 40, 61));   // over 100 bytes
  EXPECT_TRUE(ledger.Fits("c", false, 0, 100));   // other targets are separate
  ledger.Apply("b", true, 40, false, 0);
  EXPECT_EQ(ledger.usage().at("b"), (core::HintUsage{1, 40}));
  ledger.Apply("b", true, 40, false, 0);
  EXPECT_EQ(ledger.usage().count("b"), 0u);
}

TEST(RateLimiter, GrantsRateTokensPerSecondAndRefunds) {
  core::RateLimiter rl(100);
  EXPECT_EQ(rl.Take(0, 1000), 10u);  // a tenth of a second's worth to start
  EXPECT_EQ(rl.Take(0, 1000), 0u);
  EXPECT_EQ(rl.Take(500, 1000), 50u);
  EXPECT_EQ(rl.Take(10000, 1000), 100u);  // capped at one second's worth
  rl.Refund(7);
  EXPECT_EQ(rl.Take(10000, 1000), 7u);
}

// ---- HintTable ----------------------------------------------------------------------

struct TableFixture {
  explicit TableFixture(HintLimits limits = HintLimits{})
      : table(engine, limits, [this] { return wall; }) {
    store.AttachHints(&table);
  }
  storage::MemEngine engine;
  int64_t wall = 1000;
  server::HintTable table;
  server::Store store{engine, false};
};

TEST(HintTable, MergesWritesForTheSameTargetAndKeyIntoOneHint) {
  TableFixture f;
  ASSERT_TRUE(f.table.Add("b", "k", ObjectWith("a", 1, "v1")).ok());
  ASSERT_TRUE(f.table.Add("b", "k", ObjectWith("x", 1, "v2")).ok());
  ASSERT_TRUE(f.table.Add("c", "k", ObjectWith("a", 1, "v1")).ok());
  auto usage = f.table.Usage();
  EXPECT_EQ(usage.at("b").keys, 1u);
  EXPECT_EQ(usage.at("c").keys, 1u);
  Result<std::optional<Hint>> h = f.table.Get("b", "k");
  ASSERT_TRUE(h.ok() && h->has_value());
  EXPECT_EQ((*h)->object.siblings.size(), 2u);  // concurrent writes stay siblings
  EXPECT_EQ((*h)->updated_ms, 1000);
}

TEST(HintTable, StagedUntilTheStoreCommitsThenDurableAcrossReload) {
  TableFixture f;
  ASSERT_TRUE(f.table.Add("b", "k1", ObjectWith("a", 1, "v")).ok());
  ASSERT_TRUE(f.table.Add("b", "k2", ObjectWith("a", 1, "w")).ok());
  std::string raw;
  EXPECT_TRUE(f.engine.Get(Column::kHints, server::HintTable::EncodeKey("b", "k1"), &raw).IsNotFound());
  EXPECT_TRUE(f.store.HasStaged());
  ASSERT_TRUE(f.store.Commit().ok());
  EXPECT_TRUE(f.engine.Get(Column::kHints, server::HintTable::EncodeKey("b", "k1"), &raw).ok());
  // A restart rebuilds the usage from the engine.
  server::HintTable again(f.engine, HintLimits{}, [] { return int64_t{0}; });
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.Usage(), f.table.Usage());
  EXPECT_EQ(again.Usage().at("b").keys, 2u);
  // A crash loses staged changes only.
  again.Remove("b", "k1");
  EXPECT_EQ(again.Usage().at("b").keys, 1u);
  again.DiscardStaged();
  EXPECT_EQ(again.Usage().at("b").keys, 2u);
}

TEST(HintTable, RefusesBeyondTheTargetsLimitsAndKeepsOthersWorking) {
  TableFixture f(HintLimits{3, 1 << 20});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(f.table.Add("b", "k" + std::to_string(i), ObjectWith("a", 1, "v")).ok());
  Status st = f.table.Add("b", "k9", ObjectWith("a", 1, "v"));
  EXPECT_EQ(st.code(), Status::Code::kBusy);
  EXPECT_NE(st.message().find("hints for b are full"), std::string::npos) << st.message();
  EXPECT_TRUE(f.table.Add("b", "k0", ObjectWith("x", 1, "v2")).ok());  // an existing key grows
  EXPECT_TRUE(f.table.Add("c", "k9", ObjectWith("a", 1, "v")).ok());
  EXPECT_EQ(f.table.Usage().at("b").keys, 3u);

  TableFixture g(HintLimits{1000, 1024});
  const std::string big(600, 'x');
  ASSERT_TRUE(g.table.Add("b", "k0", ObjectWith("a", 1, big)).ok());
  EXPECT_EQ(g.table.Add("b", "k1", ObjectWith("a", 1, big)).code(), Status::Code::kBusy);
  EXPECT_LE(g.table.Usage().at("b").bytes, 1024u);
}

TEST(HintTable, ScanReturnsOneTargetsHintsInKeyOrderFromStart) {
  TableFixture f;
  for (const char* k : {"m", "a", "z", "", "c"}) ASSERT_TRUE(f.table.Add("b", k, ObjectWith("a", 1, k)).ok());
  ASSERT_TRUE(f.table.Add("bb", "a", ObjectWith("a", 1, "other")).ok());  // a prefix-sharing target
  ASSERT_TRUE(f.store.Commit().ok());
  ASSERT_TRUE(f.table.Add("b", "d", ObjectWith("a", 1, "d")).ok());       // staged
  f.table.Remove("b", "m");                                               // staged delete
  auto keys = [](const std::vector<Hint>& v) {
    std::vector<std::string> out;
    for (const Hint& h : v) out.push_back(h.key);
    return out;
  };
  Result<std::vector<Hint>> all = f.table.Scan("b", "", 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(keys(*all), (std::vector<std::string>{"", "a", "c", "d", "z"}));
  Result<std::vector<Hint>> some = f.table.Scan("b", std::string("a\0", 2), 2);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(keys(*some), (std::vector<std::string>{"c", "d"}));
}

// ---- NodeCore: sloppy targets ---------------------------------------------------------

class MapStore : public core::LocalStore {
 public:
  Result<Object> Read(std::string_view key) override {
    auto it = data.find(std::string(key));
    return it == data.end() ? Object() : it->second;
  }
  void Stage(std::string_view key, Object obj) override { data[std::string(key)] = std::move(obj); }
  std::map<std::string, Object> data;
};

struct SloppyNode {
  SloppyNode(std::vector<std::string> members, bool sloppy = true, int64_t rate = 1000000)
      : hints(engine, HintLimits{}, [this] { return wall; }),
        core("a", store, Options()) {
    core.SetRing(Ring::Create(32, std::move(members), 1).value());
    core::HandoffOptions h;
    h.sloppy_quorum = sloppy;
    h.rate_keys_per_s = rate;
    h.max_inflight_per_target = 4;
    h.max_hint_age_ms = 60000;
    core.SetHintStore(&hints, h);
  }
  static core::NodeOptions Options() {
    core::NodeOptions o;
    o.n = 3;
    return o;
  }
  // Commits hints as the shell does after each round.
  Outbox Take() {
    Outbox out = core.TakeOutbox();
    WriteBatch b;
    hints.AppendStaged(&b);
    EXPECT_TRUE(engine.Write(b, false).ok());
    hints.Committed(true);
    return out;
  }
  storage::MemEngine engine;
  int64_t wall = 1000;
  server::HintTable hints;
  MapStore store;
  NodeCore core;
};

// A key for which "a" is a primary (so it coordinates).
std::string KeyOn(const NodeCore& core, const std::string& node) {
  for (int i = 0;; ++i) {
    std::string k = "key" + std::to_string(i);
    auto r = core.Replicas(k);
    if (std::find(r.begin(), r.end(), node) != r.end()) return k;
  }
}

WriteSpec Blind(const std::string& v) { return WriteSpec{core::NewVersion{false, v, 0, 1}}; }

TEST(SloppyQuorum, UnreachablePrimaryIsReplacedByTheNextReachableNodeWhichStoresAHint) {
  SloppyNode t({"a", "b", "c", "d", "e"});
  const std::string key = KeyOn(t.core, "a");
  std::vector<std::string> pref = t.core.Replicas(key);
  std::string down = pref[0] == "a" ? pref[1] : pref[0];
  std::vector<std::string> fb =
      t.core.ring()->Fallbacks(t.core.ring()->PartitionOfKey(key), 3);
  t.core.SetReachable(down, false);
  t.core.SetReachable(fb[0], false);  // the first fallback is down too: the next one stands in
  t.core.StartPut(1, key, Blind("v"), 3, 0, 0);
  Outbox out = t.Take();
  std::map<std::string, std::string> sent;  // node -> hint_for
  uint64_t req = 0;
  for (auto& [to, msg] : out.sends) {
    const auto* w = std::get_if<ReplicaWrite>(&msg);
    ASSERT_NE(w, nullptr);
    sent[to] = w->hint_for;
    req = w->req_id;
  }
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent.at(fb[1]), down);
  EXPECT_EQ(t.hints.Usage().size(), 0u);  // a substitute exists: the coordinator keeps none
  // W=3 counts the substitute's ack.
  for (auto& [to, hint_for] : sent) t.core.OnMessage(to, ReplicaWriteAck{req, true, ""}, 1);
  out = t.Take();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_TRUE(out.results[0].status.ok()) << out.results[0].status.ToString();

  // A substitute that refuses (its hints for the target are full) is not counted; the
  // coordinator stored the write itself, so the outcome is unknown, not "not applied".
  t.core.StartPut(3, key, Blind("x"), 3, 0, 0);
  out = t.Take();
  for (auto& [to, msg] : out.sends) {
    const auto& w = std::get<ReplicaWrite>(msg);
    t.core.OnMessage(to, ReplicaWriteAck{w.req_id, w.hint_for.empty(), "hints for X are full"}, 1);
  }
  out = t.Take();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].status.code(), Status::Code::kTimeout) << out.results[0].status.ToString();

  // PW counts primaries only: PW=3 is unavailable with a primary down.
  t.core.StartPut(2, key, Blind("w"), 3, 3, 0);
  out = t.Take();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].status.code(), Status::Code::kUnavailable);
}

TEST(SloppyQuorum, SubstituteStoresTheHintAndRefusesWhenFull) {
  SloppyNode t({"a", "b", "c"});
  t.core.OnMessage("b", ReplicaWrite{7, "k", ObjectWith("b", 1, "v"), "c"}, 0);
  Outbox out = t.Take();
  ASSERT_EQ(out.sends.size(), 1u);
  EXPECT_TRUE(std::get<ReplicaWriteAck>(out.sends[0].second).ok);
  EXPECT_TRUE(t.store.data.empty());  // kept as a hint, not as data
  EXPECT_EQ(t.hints.Usage().at("c").keys, 1u);
  EXPECT_EQ(t.core.handoff_stats().written, 1u);
  t.core.OnMessage("b", ReplicaWrite{8, "k", ObjectWith("b", 1, "v"), std::string(70000, 'z')}, 0);
  out = t.Take();
  ASSERT_EQ(out.sends.size(), 1u);
  EXPECT_FALSE(std::get<ReplicaWriteAck>(out.sends[0].second).ok);  // not a member: refused
  EXPECT_EQ(t.hints.Usage().size(), 1u);

  storage::MemEngine engine;
  server::HintTable full(engine, HintLimits{1, 1 << 20}, [] { return int64_t{0}; });
  MapStore store;
  NodeCore core("a", store, SloppyNode::Options());
  core.SetRing(Ring::Create(32, {"a", "b", "c"}, 1).value());
  core.SetHintStore(&full, core::HandoffOptions{});
  core.OnMessage("b", ReplicaWrite{1, "k1", ObjectWith("b", 1, "v"), "c"}, 0);
  core.OnMessage("b", ReplicaWrite{2, "k2", ObjectWith("b", 1, "v"), "c"}, 0);
  out = core.TakeOutbox();
  ASSERT_EQ(out.sends.size(), 2u);
  EXPECT_TRUE(std::get<ReplicaWriteAck>(out.sends[0].second).ok);
  const auto& refused = std::get<ReplicaWriteAck>(out.sends[1].second);
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.error.find("full"), std::string::npos) << refused.error;
  EXPECT_EQ(core.handoff_stats().refused, 1u);
}

TEST(SloppyQuorum, WithEveryNodeAPrimaryTheCoordinatorKeepsTheHint) {
  for (bool sloppy : {true, false}) {
    SloppyNode t({"a", "b", "c"}, sloppy);
    t.core.SetReachable("c", false);
    t.core.StartPut(1, "k", Blind("v"), 2, 0, 0);
    Outbox out = t.Take();
    ASSERT_EQ(out.sends.size(), 1u);
    EXPECT_EQ(out.sends[0].first, "b");
    EXPECT_EQ(std::get<ReplicaWrite>(out.sends[0].second).hint_for, "");
    if (!sloppy) {
      EXPECT_TRUE(t.hints.Usage().empty());  // strict: today's behaviour, no hints
      continue;
    }
    ASSERT_EQ(t.hints.Usage().count("c"), 1u);
    Result<std::optional<Hint>> h = t.hints.Get("c", "k");
    ASSERT_TRUE(h.ok() && h->has_value());
    EXPECT_EQ((*h)->object, t.store.data.at("k"));  // the same object as its own copy
    // It counts once toward W: W=2 still needs b's ack.
    t.core.OnMessage("b", ReplicaWriteAck{std::get<ReplicaWrite>(out.sends[0].second).req_id, true, ""}, 1);
    out = t.Take();
    ASSERT_EQ(out.results.size(), 1u);
    EXPECT_TRUE(out.results[0].status.ok());
  }
}

TEST(SloppyQuorum, WithNoPrimaryReachableTheWriteIsRefused) {
  SloppyNode t({"a", "b", "c", "d", "e", "f"});
  std::string key;
  for (int i = 0; key.empty(); ++i) {
    std::string k = "key" + std::to_string(i);
    auto r = t.core.Replicas(k);
    if (std::find(r.begin(), r.end(), "a") == r.end()) key = k;
  }
  for (const std::string& p : t.core.Replicas(key)) t.core.SetReachable(p, false);
  t.core.StartPut(1, key, Blind("v"), 1, 0, 0);
  Outbox out = t.Take();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_EQ(out.results[0].status.code(), Status::Code::kUnavailable);
  EXPECT_TRUE(out.sends.empty());
  EXPECT_TRUE(t.store.data.empty());
  EXPECT_TRUE(t.hints.Usage().empty());
}

TEST(SloppyQuorum, ATargetThatDoesNotAckByTheDeadlineGetsAHintFromTheCoordinator) {
  SloppyNode t({"a", "b", "c"});
  t.core.StartPut(1, "k", Blind("v"), 1, 0, 0);  // W=1: answered at once
  Outbox out = t.Take();
  ASSERT_EQ(out.results.size(), 1u);
  EXPECT_TRUE(out.results[0].status.ok());
  ASSERT_EQ(out.sends.size(), 2u);
  const uint64_t req = std::get<ReplicaWrite>(out.sends[0].second).req_id;
  EXPECT_EQ(t.core.inflight(), 0u);  // waiting for late acks does not count as load
  t.core.OnMessage("b", ReplicaWriteAck{req, true, ""}, 10);
  t.core.Tick(1000);
  t.Take();
  EXPECT_TRUE(t.hints.Usage().empty());  // c may still answer
  t.core.Tick(5000);                     // past the deadline: c never acked
  t.Take();
  ASSERT_EQ(t.hints.Usage().size(), 1u);
  EXPECT_EQ(t.hints.Usage().at("c").keys, 1u);
  EXPECT_EQ((*t.hints.Get("c", "k").value()).object, t.store.data.at("k"));

  // Every target acked: nothing is kept.
  t.core.StartPut(2, "k2", Blind("v"), 1, 0, 0);
  out = t.Take();
  for (auto& [to, msg] : out.sends) {
    t.core.OnMessage(to, ReplicaWriteAck{std::get<ReplicaWrite>(msg).req_id, true, ""}, 20);
  }
  t.core.Tick(10000);
  t.Take();
  EXPECT_EQ(t.hints.Get("b", "k2")->has_value() || t.hints.Get("c", "k2")->has_value(), false);
  EXPECT_EQ(t.core.inflight(), 0u);
}

TEST(SloppyQuorum, ASubstituteAnswersReadsWithTheHintsItKeepsForTheKey) {
  SloppyNode t({"a", "b", "c"});
  t.core.OnMessage("b", ReplicaWrite{1, "k", ObjectWith("b", 1, "v"), "c"}, 0);
  t.Take();
  t.core.OnMessage("b", core::ReplicaRead{2, "k"}, 1);
  Outbox out = t.Take();
  ASSERT_EQ(out.sends.size(), 1u);
  const auto& reply = std::get<core::ReplicaReadReply>(out.sends[0].second);
  ASSERT_TRUE(reply.ok);
  EXPECT_EQ(reply.object, ObjectWith("b", 1, "v"));
  EXPECT_TRUE(t.store.data.empty());  // still only a hint
}

// ---- NodeCore: replay bookkeeping ---------------------------------------------------

TEST(Handoff, ReplaysToAReachableTargetAndDeletesOnlyAfterItsAck) {
  SloppyNode t({"a", "b", "c"});
  t.core.SetReachable("c", false);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(t.hints.Add("c", "k" + std::to_string(i), ObjectWith("a", 1, "v")).ok());
  }
  t.Take();
  t.core.ReplayHints(0, 1000);
  EXPECT_TRUE(t.Take().sends.empty());  // c is down
  t.core.SetReachable("c", true);
  t.core.ReplayHints(10, 1000);
  Outbox out = t.Take();
  ASSERT_EQ(out.sends.size(), 4u);  // max_inflight_per_target
  t.core.ReplayHints(20, 1000);
  EXPECT_TRUE(t.Take().sends.empty());  // all four still await an ack
  std::vector<ReplicaWrite> sent;
  for (auto& [to, msg] : out.sends) {
    EXPECT_EQ(to, "c");
    sent.push_back(std::get<ReplicaWrite>(msg));
    EXPECT_EQ(sent.back().hint_for, "");  // the target merges it as its own copy
  }
  // k0: acked. k1: a newer write merged in before the ack. k2: refused. k3: no answer.
  ASSERT_TRUE(t.hints.Add("c", sent[1].key, ObjectWith("z", 1, "newer")).ok());
  t.core.OnMessage("c", ReplicaWriteAck{sent[0].req_id, true, ""}, 30);
  t.core.OnMessage("c", ReplicaWriteAck{sent[1].req_id, true, ""}, 30);
  t.core.OnMessage("c", ReplicaWriteAck{sent[2].req_id, false, "disk"}, 30);
  t.core.OnMessage("b", ReplicaWriteAck{sent[3].req_id, true, ""}, 30);  // not the target: ignored
  t.Take();
  EXPECT_FALSE(t.hints.Get("c", sent[0].key)->has_value());
  EXPECT_TRUE(t.hints.Get("c", sent[1].key)->has_value());
  EXPECT_TRUE(t.hints.Get("c", sent[2].key)->has_value());
  EXPECT_TRUE(t.hints.Get("c", sent[3].key)->has_value());
  EXPECT_EQ(t.core.handoff_stats().replayed, 1u);
  EXPECT_EQ(t.core.handoff_stats().replay_failed, 1u);
  EXPECT_EQ(t.core.replays_in_flight(), 1u);
  t.core.Tick(100000);  // the unanswered one times out and is sent again later
  EXPECT_EQ(t.core.replays_in_flight(), 0u);
  // Acknowledge everything from now on until the target has no hints.
  for (int round = 0; round < 10 && !t.hints.Usage().empty(); ++round) {
    t.core.ReplayHints(100000 + round, 1000);
    for (auto& [to, msg] : t.Take().sends) {
      t.core.OnMessage(to, ReplicaWriteAck{std::get<ReplicaWrite>(msg).req_id, true, ""}, 100000);
    }
    t.Take();
  }
  EXPECT_TRUE(t.hints.Usage().empty());
  EXPECT_EQ(t.core.handoff_stats().replayed, 6u);
}

// A target that looks reachable but does not answer (the failure detector has not
// caught up with a partition, or its connection is stuck) is sent one replay at a time
// after a timeout, not a full window per timeout; the first answer restores the window.
TEST(Handoff, AfterATimeoutATargetIsProbedWithOneReplayUntilItAnswers) {
  SloppyNode t({"a", "b", "c"});
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(t.hints.Add("c", "k" + std::to_string(i), ObjectWith("a", 1, "v")).ok());
  }
  t.Take();
  t.core.ReplayHints(0, 1000);
  ASSERT_EQ(t.Take().sends.size(), 4u);  // the full window (max_inflight_per_target)
  t.core.Tick(100000);                   // none answered
  EXPECT_EQ(t.core.handoff_stats().replay_failed, 4u);
  EXPECT_EQ(t.core.handoff_stats().replay_timeouts, 4u);
  t.core.ReplayHints(100010, 1000);
  Outbox probe = t.Take();
  ASSERT_EQ(probe.sends.size(), 1u);  // one probe
  t.core.ReplayHints(100020, 1000);
  EXPECT_TRUE(t.Take().sends.empty());  // still one at a time while it is unanswered
  t.core.Tick(200000);                  // the probe times out too: one more failure, not four
  EXPECT_EQ(t.core.handoff_stats().replay_failed, 5u);
  t.core.ReplayHints(200010, 1000);
  probe = t.Take();
  ASSERT_EQ(probe.sends.size(), 1u);
  const auto& w = std::get<ReplicaWrite>(probe.sends[0].second);
  t.core.OnMessage("c", ReplicaWriteAck{w.req_id, true, ""}, 200020);
  t.Take();
  EXPECT_EQ(t.core.handoff_stats().replayed, 1u);
  t.core.ReplayHints(200030, 1000);
  EXPECT_EQ(t.Take().sends.size(), 4u);  // answered: the full window again
}

TEST(Handoff, RateLimitAndExpiry) {
  SloppyNode t({"a", "b", "c"}, true, /*rate=*/20);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(t.hints.Add("b", "k" + std::to_string(i), ObjectWith("a", 1, "v")).ok());
  t.wall = 500000;  // these are fresh
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(t.hints.Add("c", "k" + std::to_string(i), ObjectWith("a", 1, "v")).ok());
  t.Take();
  // b's hints are 499 s old at wall 500000: beyond max_hint_age_ms (60 s), dropped unsent.
  // 20 keys/s starts with 2 tokens, so one call handles at most two hints.
  t.core.ReplayHints(0, 500000);
  Outbox out = t.Take();
  EXPECT_TRUE(out.sends.empty());
  EXPECT_EQ(t.core.handoff_stats().dropped, 2u);
  t.core.ReplayHints(0, 500000);
  EXPECT_TRUE(t.Take().sends.empty());  // no tokens left at the same instant
  t.core.ReplayHints(100, 500000);      // 100 ms: two more tokens
  out = t.Take();
  EXPECT_EQ(t.core.handoff_stats().dropped, 3u);
  EXPECT_EQ(out.sends.size(), 1u);  // c's first, fresh hint
  EXPECT_EQ(t.hints.Usage().count("b"), 0u);
  EXPECT_EQ(t.hints.Usage().at("c").keys, 3u);
}

// ---- Settings ---------------------------------------------------------------------------

TEST(HandoffConfig, SloppyQuorumIsABooleanAndHandoffLimitsAreChecked) {
  Result<Config> c = ParseConfigText("[cluster]\nsloppy_quorum = false\n[handoff]\nrate_keys_per_s = 7\n",
                                     "t.toml", {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sloppy_quorum, 0);
  EXPECT_EQ(c->handoff_rate_keys_per_s, 7);
  EXPECT_EQ(Config().sloppy_quorum, 1);  // on by default
  c = ParseConfigText("", "t.toml", {{"cluster.sloppy_quorum", "true"}});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->sloppy_quorum, 1);
  c = ParseConfigText("[cluster]\nsloppy_quorum = \"yes\"\n", "t.toml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("cluster.sloppy_quorum' must be true or false"), std::string::npos);
  c = ParseConfigText("[handoff]\nmax_bytes_per_target = 10\n", "t.toml", {});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("handoff.max_bytes_per_target"), std::string::npos);
}

}  // namespace
}  // namespace itsuka
