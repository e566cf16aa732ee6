// A partition move carries Paxos acceptor state (core/node_core.h, "Moves"): the merge
// rule, the store's scan of acceptor states, and NodeCores replacing a primary while a
// chosen value sits only in acceptor states. CONSISTENT during a move (docs/DESIGN.md
// 5.6): joint rounds over the old and the new owners, the acceptor rule that refuses a
// round over the old owners alone once the move is known, and transfers that run while
// rounds do.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "common/hash.h"
#include "core/node_core.h"
#include "core/paxos.h"
#include "server/store.h"
#include "storage/mem_engine.h"

namespace itsuka::core {
namespace {

Object Written(const std::string& actor, const std::string& v) {
  return ApplyWrite(Object(), VClock(), actor, NewVersion{false, v, 0, 1}, ObjectLimits{}).value();
}

std::string Only(const Object& o) {
  std::string out;
  for (const Sibling& s : o.siblings) out += (out.empty() ? "" : "|") + s.value;
  return out.empty() ? "<none>" : out;
}

TEST(PaxosMove, MergeTakesTheHigherPromiseAndTheHigherAcceptedPairWhole) {
  const Object v1 = Written("x", "v1"), v2 = Written("y", "v2");
  AcceptorState mine{Ballot{9, "a"}, Ballot{3, "a"}, v1};
  // Higher promise, lower accepted ballot: only the promise moves.
  AcceptorState other{Ballot{12, "c"}, Ballot{2, "c"}, v2};
  EXPECT_TRUE(AcceptorMerge(mine, other));
  EXPECT_EQ(mine, (AcceptorState{Ballot{12, "c"}, Ballot{3, "a"}, v1}));
  // Higher accepted ballot: ballot and value together.
  EXPECT_TRUE(AcceptorMerge(mine, AcceptorState{Ballot{5, "b"}, Ballot{5, "b"}, v2}));
  EXPECT_EQ(mine, (AcceptorState{Ballot{12, "c"}, Ballot{5, "b"}, v2}));
  // Nothing newer: unchanged, and said so (nothing to persist).
  const AcceptorState before = mine;
  EXPECT_FALSE(AcceptorMerge(mine, AcceptorState{Ballot{5, "b"}, Ballot{4, "z"}, v1}));
  EXPECT_FALSE(AcceptorMerge(mine, AcceptorState()));
  EXPECT_EQ(mine, before);
  // Into an empty state (a node that never saw the key): a copy.
  AcceptorState fresh;
  EXPECT_TRUE(AcceptorMerge(fresh, before));
  EXPECT_EQ(fresh, before);
  // Ballots compare by counter, then node: (5, "c") is above (5, "b").
  EXPECT_TRUE(AcceptorMerge(fresh, AcceptorState{Ballot{5, "c"}, Ballot{5, "c"}, v1}));
  EXPECT_EQ(fresh.accepted, (Ballot{5, "c"}));
  EXPECT_EQ(fresh.value, v1);
  EXPECT_EQ(fresh.promised, (Ballot{12, "c"}));
}

TEST(PaxosMove, StoreScansPaxosStatesInRangeWithStagedOnes) {
  storage::MemEngine engine;
  server::Store store(engine, false);
  const AcceptorState s{Ballot{2, "n"}, Ballot{1, "n"}, Written("n", "x")};
  for (const char* k : {"b", "d", "f", "h"}) store.StagePaxos(k, s);
  store.Stage("c", Written("n", "data only"));  // a data object is not a Paxos state
  ASSERT_TRUE(store.Commit().ok());
  AcceptorState newer = s;
  newer.promised = Ballot{7, "m"};
  store.StagePaxos("a", s);
  store.StagePaxos("d", newer);
  store.StagePaxos("z", s);  // outside [start, end)
  auto want = [](std::string_view k) { return k != "f"; };
  std::vector<std::string> seen;
  std::string start;
  for (int batches = 0;; ++batches) {
    ASSERT_LT(batches, 10);
    Result<LocalStore::PaxosScanBatch> b = store.ScanPaxos(start, "y", 2, 100, want);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    for (auto& [k, st] : b->states) {
      seen.push_back(k);
      if (k == "d") {
        EXPECT_EQ(st, newer);  // the staged state wins
      }
    }
    if (b->done) break;
    ASSERT_GT(b->next, start);
    ASSERT_LT(b->next, "y");
    start = b->next;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "d", "h"}));
  // max_examined bounds one call even when nothing matches.
  Result<LocalStore::PaxosScanBatch> none =
      store.ScanPaxos("", "", 10, 2, [](std::string_view) { return false; });
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->states.empty());
  EXPECT_FALSE(none->done);
}

// Four nodes: a, b and c are the key's primaries; d joins and replaces c.
struct Cluster {
  std::map<std::string, storage::MemEngine> engines;
  std::map<std::string, std::unique_ptr<server::Store>> stores;
  std::map<std::string, std::unique_ptr<NodeCore>> cores;
  std::vector<ClientResult> results;
  Ring old_ring = Ring::Create(8, {"a", "b", "c"}, 1).value();
  Ring new_ring = Ring::Create(8, {"a", "b", "d"}, 2).value();

  Cluster() {
    NodeOptions o;
    o.n = 3;
    for (const char* id : {"a", "b", "c", "d"}) {
      stores[id] = std::make_unique<server::Store>(engines[id], false);
      cores[id] = std::make_unique<NodeCore>(id, *stores[id], o);
      cores[id]->SetRing(old_ring);
    }
  }
  NodeCore& operator[](const std::string& id) { return *cores.at(id); }

  // Delivers messages until none is left; `drop(from, to, msg)` loses one.
  void Pump(int64_t now,
            const std::function<bool(const std::string&, const std::string&, const PeerMessage&)>& drop) {
    for (int rounds = 0; rounds < 1000; ++rounds) {
      bool any = false;
      for (auto& [id, core] : cores) {
        Outbox out = core->TakeOutbox();
        ASSERT_TRUE(stores[id]->Commit().ok());
        for (ClientResult& r : out.results) results.push_back(std::move(r));
        for (auto& [to, msg] : out.sends) {
          if (drop(id, to, msg)) continue;
          any = true;
          cores.at(to)->OnMessage(id, msg, now);
        }
      }
      if (!any) return;
    }
    FAIL() << "messages never stopped";
  }

  // Cuts `node` off from everyone (both ways, as the failure detector would see it).
  void Isolate(const std::string& node, bool isolated) {
    for (auto& [id, core] : cores) {
      if (id == node) {
        for (auto& [other, c] : cores) {
          if (other != id) core->SetReachable(other, !isolated);
        }
      } else {
        core->SetReachable(node, !isolated);
      }
    }
  }
  std::set<std::string> isolated;
  bool Dropped(const std::string& from, const std::string& to) const {
    return isolated.count(from) > 0 || isolated.count(to) > 0;
  }

  ClientResult Consistent(const std::string& via, const std::string& key, bool read,
                          const std::string& value, int64_t now,
                          const std::function<bool(const PeerMessage&)>& lose = nullptr) {
    results.clear();
    WriteSpec spec;
    spec.version = NewVersion{false, value, 0, now};
    cores.at(via)->StartConsistent(1, key, read, spec, now);
    // A round refused for a higher ballot backs off and retries on a later Tick.
    for (int64_t t = now; results.empty() && t < now + 3000; t += 10) {
      for (auto& [id, core] : cores) core->Tick(t);
      Pump(t, [&](const std::string& from, const std::string& to, const PeerMessage& m) {
        return Dropped(from, to) || (lose && lose(m));
      });
    }
    EXPECT_EQ(results.size(), 1u);
    return results.empty() ? ClientResult{} : results[0];
  }

  // The switch to {a, b, d} everywhere, then a CONSISTENT read through a with b cut off:
  // a and d alone, a majority of the new owners, answer it.
  ClientResult ReadAfterTheSwitchWithoutB(const std::string& key, int64_t now) {
    for (auto& [id, core] : cores) core->SetRing(new_ring);
    Isolate("b", true);
    isolated = {"b"};
    return Consistent("a", key, true, "", now);
  }

  // Moves every partition from {a, b, c} to {a, b, d}; d copies from whichever old
  // primaries are not isolated, then the move completes and c leaves.
  void Move() {
    for (auto& [id, core] : cores) core->SetRings(old_ring, new_ring, 42);
    Transfer();
    for (auto& [id, core] : cores) core->SetRing(new_ring);
  }
  // The middle of Move: every node knows the move; d copies.
  void Transfer() {
    cores.at("d")->AllowTransfers(true);
    cores.at("d")->Tick(9000);
    Pump(9000, [&](const std::string& from, const std::string& to, const PeerMessage&) {
      return Dropped(from, to);
    });
    ASSERT_EQ(cores.at("d")->Synced(), 42u) << "d did not finish its copy";
  }
};

// A key whose preference list (both rings) starts with `leader`, so it coordinates the
// key's rounds.
std::string KeyLedBy(const Cluster& c, const std::string& leader) {
  for (int i = 0; i < 100000; ++i) {
    const std::string k = "key" + std::to_string(i);
    if (c.old_ring.PreferenceList(c.old_ring.PartitionOfKey(k), 3)[0] == leader &&
        c.new_ring.PreferenceList(c.new_ring.PartitionOfKey(k), 3)[0] == leader) {
      return k;
    }
  }
  ADD_FAILURE() << "no key led by " << leader;
  return "";
}

bool IsCommit(const PeerMessage& m) { return std::holds_alternative<PaxosCommit>(m); }

// The review's scenario: v2 chosen by {b, c} with its commits lost; d replaces c and
// copies from a and c while b is unreachable; then a CONSISTENT read over {a, d}.
TEST(PaxosMove, AValueChosenOnlyInAcceptorStatesSurvivesTheReplacementOfAnAcceptor) {
  Cluster c;
  const std::string key = KeyLedBy(c, "b");
  ClientResult r = c.Consistent("b", key, false, "v1", 1000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  for (const char* id : {"a", "b", "c"}) ASSERT_EQ(Only(c.stores[id]->Read(key).value()), "v1") << id;

  // b proposes v2 with a cut off: accepted by b and c, chosen; c never gets the commit.
  c.Isolate("a", true);
  c.isolated = {"a"};
  r = c.Consistent("b", key, false, "v2", 5000, IsCommit);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.applied);
  c.Isolate("a", false);
  c.isolated.clear();
  EXPECT_EQ(Only(c.stores["b"]->Read(key).value()), "v2");
  EXPECT_EQ(Only(c.stores["c"]->Read(key).value()), "v1");  // v2 only in c's acceptor state
  EXPECT_EQ(Only(c.stores["c"]->ReadPaxos(key).value().value), "v2");
  EXPECT_EQ(Only(c.stores["a"]->Read(key).value()), "v1");

  // d joins in c's place; b is unreachable throughout the copy and the read.
  c.Isolate("b", true);
  c.isolated = {"b"};
  c.Move();
  EXPECT_EQ(Only(c.stores["d"]->Read(key).value()), "v1");  // the data copy alone is stale
  EXPECT_GT(c["d"].transferred_paxos_states(), 0u);
  EXPECT_EQ(c.stores["d"]->ReadPaxos(key).value().accepted,
            c.stores["c"]->ReadPaxos(key).value().accepted);
  r = c.Consistent("a", key, true, "", 13000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(Only(r.object), "v2") << "a CONSISTENT read lost a chosen value";
}

// The chosen value was the key's first: c, which accepted it, has no data object at
// all, only acceptor state, and a has nothing.
TEST(PaxosMove, AcceptorStateOfAKeyWithoutDataIsCopied) {
  Cluster c;
  const std::string key = KeyLedBy(c, "b");
  c.Isolate("a", true);
  c.isolated = {"a"};
  ClientResult r = c.Consistent("b", key, false, "first", 1000, IsCommit);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  c.Isolate("a", false);
  c.isolated.clear();
  ASSERT_TRUE(c.stores["c"]->Read(key).value().empty());
  ASSERT_TRUE(c.stores["a"]->Read(key).value().empty());

  c.Isolate("b", true);
  c.isolated = {"b"};
  c.Move();
  EXPECT_TRUE(c.stores["d"]->Read(key).value().empty());
  r = c.Consistent("d", key, true, "", 13000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(Only(r.object), "first");
}

// Many keys with states only, fewer than one batch's worth of data: the copy pages
// through the state scan and brings every state over.
TEST(PaxosMove, StatesArePagedLikeObjects) {
  Cluster c;
  const AcceptorState s{Ballot{3, "b"}, Ballot{3, "b"}, Written("~strong", "s")};
  for (int i = 0; i < 1000; ++i) c.stores["c"]->StagePaxos("k" + std::to_string(i), s);
  c.stores["a"]->Stage("k5", Written("a", "data"));
  ASSERT_TRUE(c.stores["c"]->Commit().ok());
  ASSERT_TRUE(c.stores["a"]->Commit().ok());
  c.Isolate("b", true);
  c.isolated = {"b"};
  c.Move();
  EXPECT_EQ(c["d"].transferred_paxos_states(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(c.stores["d"]->ReadPaxos("k" + std::to_string(i)).value(), s) << i;
  }
  EXPECT_EQ(Only(c.stores["d"]->Read("k5").value()), "data");
}

// ---- CONSISTENT during a move ------------------------------------------------------

TEST(PaxosMove, AJointRoundNeedsAMajorityOfEachGroup) {
  const std::vector<std::string> o = {"a", "b", "c"}, p = {"a", "b", "d"};
  const std::vector<QuorumGroup> groups = {QuorumGroup{o, 2}, QuorumGroup{p, 2}};
  const Object none;
  {
    PaxosRound r({"a", "b", "c", "d"}, groups, Ballot{1, "a"});
    // c and d: a majority of neither list on its own... c is in O only, d in P only.
    EXPECT_EQ(r.OnPromise("c", true, Ballot{1, "a"}, Ballot(), none, none),
              PaxosRound::Phase::kPrepare);
    EXPECT_EQ(r.OnPromise("d", true, Ballot{1, "a"}, Ballot(), none, none),
              PaxosRound::Phase::kPrepare);
    // a is in both: now 2 of O and 2 of P.
    EXPECT_EQ(r.OnPromise("a", true, Ballot{1, "a"}, Ballot(), none, none),
              PaxosRound::Phase::kAccept);
    // Accepts from a and c: a majority of O, one of P only.
    EXPECT_EQ(r.OnAccepted("a", true, Ballot{1, "a"}), PaxosRound::Phase::kAccept);
    EXPECT_EQ(r.OnAccepted("c", true, Ballot{1, "a"}), PaxosRound::Phase::kAccept);
    EXPECT_EQ(r.OnAccepted("d", true, Ballot{1, "a"}), PaxosRound::Phase::kChosen);
  }
  {
    // a and b promise (2 of each list) but the round is not chosen until both lists
    // have a majority of accepts; d and a refusing leaves P one short: failed.
    PaxosRound r({"a", "b", "c", "d"}, groups, Ballot{1, "a"});
    r.OnPromise("a", true, Ballot{1, "a"}, Ballot(), none, none);
    ASSERT_EQ(r.OnPromise("b", true, Ballot{1, "a"}, Ballot(), none, none),
              PaxosRound::Phase::kAccept);
    EXPECT_EQ(r.OnAccepted("c", true, Ballot{1, "a"}), PaxosRound::Phase::kAccept);
    EXPECT_EQ(r.OnAccepted("d", false, Ballot{2, "x"}), PaxosRound::Phase::kAccept);
    EXPECT_EQ(r.OnAccepted("a", false, Ballot{2, "x"}), PaxosRound::Phase::kFailed);
  }
  {
    // d unreachable (not an acceptor of the round) and b refusing: P cannot reach 2.
    PaxosRound r({"a", "b", "c"}, groups, Ballot{1, "a"});
    EXPECT_EQ(r.OnPromise("b", false, Ballot{3, "b"}, Ballot(), none, none),
              PaxosRound::Phase::kFailed);
  }
}

// While the move runs (before and during d's copy) CONSISTENT operations go on, over
// joint majorities; d, an acceptor before it copied anything, answers with an empty
// state, which is fine because the old owners' majority holds the value.
TEST(PaxosMove, OperationsRunDuringTheMoveOverJointMajorities) {
  Cluster c;
  const std::string key = KeyLedBy(c, "b");
  ClientResult r = c.Consistent("b", key, false, "v1", 1000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  for (auto& [id, core] : c.cores) core->SetRings(c.old_ring, c.new_ring, 42);
  // Through every node: the coordinator (b), another old owner, the one leaving, the
  // receiver (which forwards to b).
  int n = 0;
  for (const char* via : {"b", "a", "c", "d"}) {
    const std::string v = std::string("m") + via;
    r = c.Consistent(via, key, false, v, 2000 + 100 * n++);
    ASSERT_TRUE(r.status.ok()) << via << ": " << r.status.ToString();
    EXPECT_TRUE(r.applied);
    r = c.Consistent(via, key, true, "", 2000 + 100 * n++);
    ASSERT_TRUE(r.status.ok()) << via << ": " << r.status.ToString();
    EXPECT_EQ(Only(r.object), v);
  }
  EXPECT_GT(c["b"].consistent_stats().joint_rounds, 0u);
  // d accepted directly: it is an acceptor of the key's rounds during the move.
  EXPECT_EQ(Only(c.stores["d"]->ReadPaxos(key).value().value), "md");
  // A round needs a majority of the new owners too: without d and b (a, c reachable,
  // a majority of the old list) it is refused up front.
  c.Isolate("d", true);
  c.Isolate("b", true);
  c.isolated = {"b", "d"};
  r = c.Consistent("a", key, true, "", 4000);
  EXPECT_EQ(r.status.code(), Status::Code::kUnavailable) << r.status.ToString();
  EXPECT_NE(r.status.message().find("new primaries"), std::string::npos) << r.status.ToString();
  c.Isolate("d", false);
  c.Isolate("b", false);
  c.isolated.clear();
  // The copy, with a write in the middle of it (the transfer runs while rounds do), then
  // the switch: the last chosen value is what the new owners agree on.
  c.cores.at("d")->AllowTransfers(true);
  r = c.Consistent("b", key, false, "during copy", 5000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  c.Transfer();
  r = c.ReadAfterTheSwitchWithoutB(key, 13000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(Only(r.object), "during copy");
}

// The acceptor rule: an acceptor answers only rounds over its own view of the owners. A
// round over the old owners only (its coordinator has not heard of the move) is refused
// by every acceptor that has, at prepare and at accept; a round over the new owners
// alone by one that has not seen the switch.
TEST(PaxosMove, AnAcceptorThatKnowsTheMoveRefusesARoundOverTheOldOwnersAlone) {
  Cluster c;
  const std::string key = KeyLedBy(c, "b");
  const uint64_t o = OwnersFingerprint({"a", "b", "c"}), p = OwnersFingerprint({"a", "b", "d"});
  c["a"].SetRings(c.old_ring, c.new_ring, 42);
  auto promise = [&](const std::string& to, uint64_t req, uint64_t counter, uint64_t r,
                     uint64_t w) {
    c[to].OnMessage("b", PaxosPrepare{req, key, Ballot{counter, "b"}, r, w}, 0);
    std::vector<PaxosPromise> out;
    for (auto& [dest, m] : c[to].TakeOutbox().sends) {
      if (auto* pr = std::get_if<PaxosPromise>(&m)) out.push_back(*pr);
    }
    EXPECT_EQ(out.size(), 1u);
    return out.empty() ? PaxosPromise{} : out[0];
  };
  PaxosPromise stale = promise("a", 1, 5, o, o);
  EXPECT_FALSE(stale.ok);
  EXPECT_NE(stale.error.find("a move changed them"), std::string::npos) << stale.error;
  EXPECT_TRUE(promise("a", 2, 6, o, p).ok);   // joint: answered
  EXPECT_FALSE(promise("c", 3, 7, o, p).ok);  // c has not heard of the move: not its owners
  EXPECT_TRUE(promise("c", 4, 8, o, o).ok);   // ... the old round is answered there
  EXPECT_FALSE(promise("d", 5, 9, o, p).ok);  // d has not: not an owner yet
  EXPECT_FALSE(promise("a", 51, 9, p, p).ok);  // a has not seen the switch
  // After the switch: rounds over the new owners only.
  c["a"].SetRing(c.new_ring);
  EXPECT_FALSE(promise("a", 6, 10, o, o).ok);
  EXPECT_FALSE(promise("a", 7, 11, o, p).ok);
  EXPECT_TRUE(promise("a", 8, 12, p, p).ok);
  // Accepts follow the same rule.
  c["a"].OnMessage("b", PaxosAccept{9, key, Ballot{12, "b"}, Written("b", "x"), o, o}, 0);
  bool refused = false;
  for (auto& [dest, m] : c["a"].TakeOutbox().sends) {
    if (auto* acc = std::get_if<PaxosAccepted>(&m)) refused = !acc->ok && !acc->error.empty();
  }
  EXPECT_TRUE(refused);
  EXPECT_GE(c["a"].consistent_stats().refused_owners, 5u);
}

// Open point 1 of the old 5.6: a round started over the old owners before its
// coordinator heard of the move, whose accept to c the network delays until after d
// copied the key from a and c (the accept to a is lost). Were c to accept, v2 would be
// chosen by {b, c} behind the copy's back and a read over {a, d} after the switch would
// miss it. c knows the move and refuses, so v2 is not chosen: the operation fails
// (outcome unknown) and {a, d} agree on v1.
TEST(PaxosMove, AnOldRoundsLateAcceptAfterTheCopyIsRefused) {
  Cluster c;
  const std::string key = KeyLedBy(c, "b");
  ClientResult r = c.Consistent("b", key, false, "v1", 1000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  std::vector<std::pair<std::string, PaxosAccept>> held;
  c.results.clear();
  WriteSpec spec;
  spec.version = NewVersion{false, "v2", 0, 2000};
  c["b"].StartConsistent(7, key, false, spec, 2000);
  c.Pump(2000, [&](const std::string&, const std::string& to, const PeerMessage& m) {
    if (const auto* a = std::get_if<PaxosAccept>(&m)) {
      if (to == "c") held.emplace_back(to, *a);
      return true;
    }
    return false;
  });
  ASSERT_EQ(held.size(), 1u);
  // Everyone hears of the move; d copies from a and c (b cut off), neither holds v2.
  for (auto& [id, core] : c.cores) core->SetRings(c.old_ring, c.new_ring, 42);
  c.Isolate("b", true);
  c.isolated = {"b"};
  c.Transfer();
  c.Isolate("b", false);
  c.isolated.clear();
  // The late accept arrives at c: refused, c knows the move.
  for (auto& [to, m] : held) c[to].OnMessage("b", m, 2500);
  c.Pump(2500, [](const std::string&, const std::string&, const PeerMessage&) { return false; });
  EXPECT_NE(Only(c.stores["c"]->ReadPaxos(key).value().value), "v2");
  EXPECT_GE(c["c"].consistent_stats().refused_owners, 1u);
  for (int64_t t = 2500; c.results.empty() && t < 6000; t += 10) {
    for (auto& [id, core] : c.cores) core->Tick(t);
    c.Pump(t, [](const std::string&, const std::string&, const PeerMessage&) { return false; });
  }
  ASSERT_EQ(c.results.size(), 1u);
  EXPECT_EQ(c.results[0].status.code(), Status::Code::kTimeout) << c.results[0].status.ToString();
  // After the switch, with b (the only acceptor of v2) cut off, a and d agree on v1.
  r = c.ReadAfterTheSwitchWithoutB(key, 13000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(Only(r.object), "v1");
}

// What d accepted directly during the move is never lowered by the copy of an older
// state from a source (AcceptorMerge keeps the higher pair and the higher promise).
TEST(PaxosMove, TheCopyNeverLowersWhatTheReceiverAcceptedItself) {
  Cluster c;
  const std::string key = KeyLedBy(c, "b");
  ClientResult r = c.Consistent("b", key, false, "v1", 1000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  for (auto& [id, core] : c.cores) core->SetRings(c.old_ring, c.new_ring, 42);
  // c cut off: {a, b} is a majority of the old owners, {a, b, d} of the new.
  c.Isolate("c", true);
  c.isolated = {"c"};
  r = c.Consistent("b", key, false, "v2", 2000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  c.Isolate("c", false);
  c.isolated.clear();
  const AcceptorState direct = c.stores["d"]->ReadPaxos(key).value();
  ASSERT_EQ(Only(direct.value), "v2");
  ASSERT_EQ(Only(c.stores["c"]->ReadPaxos(key).value().value), "v1");  // older at c
  // d copies from a and c (b cut off): c's older state arrives after d's own.
  c.Isolate("b", true);
  c.isolated = {"b"};
  c.Transfer();
  const AcceptorState after = c.stores["d"]->ReadPaxos(key).value();
  EXPECT_EQ(after.accepted, direct.accepted);
  EXPECT_GE(after.promised, direct.promised);
  EXPECT_EQ(Only(after.value), "v2");
  for (auto& [id, core] : c.cores) core->SetRing(c.new_ring);
  r = c.Consistent("d", key, true, "", 13000);  // a and d: the new majority
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(Only(r.object), "v2");
}

// A key whose old preference list starts with `leader` (it coordinates the key's rounds
// before the move) and whose new one leaves c out (every key's, here).
std::string KeyLedInOldRingBy(const Cluster& c, const std::string& leader) {
  for (int i = 0; i < 100000; ++i) {
    const std::string k = "key" + std::to_string(i);
    if (c.old_ring.PreferenceList(c.old_ring.PartitionOfKey(k), 3)[0] == leader) return k;
  }
  ADD_FAILURE() << "no key led by " << leader;
  return "";
}

WriteSpec Value(const std::string& v, int64_t now) {
  WriteSpec spec;
  spec.version = NewVersion{false, v, 0, now};
  return spec;
}

// Ticks and delivers until `via` answered client request `req` (3 s at most).
ClientResult AwaitResult(Cluster& c, uint64_t req, int64_t now,
                         const std::function<bool(const std::string&, const std::string&,
                                                  const PeerMessage&)>& drop) {
  for (int64_t t = now; t < now + 3000; t += 10) {
    for (auto& [id, core] : c.cores) core->Tick(t);
    c.Pump(t, drop);
    for (const ClientResult& r : c.results) {
      if (r.client_req == req) return r;
    }
  }
  ADD_FAILURE() << "request " << req << " was never answered";
  return ClientResult{};
}

// Everyone switches to the new ring; b comes back and a is cut off: a CONSISTENT read
// through b over the new owners {b, d} (a majority of them without a).
ClientResult ReadOverBAndDAfterTheSwitch(Cluster& c, const std::string& key) {
  for (auto& [id, core] : c.cores) core->SetRing(c.new_ring);
  c.Isolate("b", false);
  c.Isolate("a", true);
  c.isolated = {"a"};
  return c.Consistent("b", key, true, "", 13000);
}

// Stale-view simulator seed 11 (with late messages) in miniature: a round planned
// before a move reaches an old primary after the new one copied that primary's state.
// The key's old primaries are {c, a, b}, its new ones {a, b, d}; b is unreachable. c
// admits a CONSISTENT write of v2 and sends its prepare; the move becomes visible; d
// copies from c and a; only then does the prepare reach a. Were it answered, v2 would
// be chosen by {c, a} behind the copy, and after the switch a round over {b, d} (a
// cut off) would read v1: an acknowledged CONSISTENT write lost. Under joint rounds a
// knows the move and refuses the prepare over the old owners alone (R2); c, which knows
// it too, retries over the joint owners {c, a, b} + {a, b, d}, so if the write is
// acknowledged d accepted v2 directly and the read after the switch finds it.
TEST(PaxosMove, AnAcceptorThatKnowsOfAMoveAnswersNoRoundForTheKey) {
  Cluster c;
  const std::string key = KeyLedInOldRingBy(c, "c");
  ASSERT_TRUE(c.Consistent("c", key, false, "v1", 1000).status.ok());
  c.Isolate("b", true);
  c.isolated = {"b"};
  auto dropped = [&](const std::string& from, const std::string& to, const PeerMessage&) {
    return c.Dropped(from, to);
  };
  c.results.clear();
  c["c"].StartConsistent(7, key, false, Value("v2", 2000), 2000);
  Outbox held = c["c"].TakeOutbox();  // the prepare to a, late
  ASSERT_TRUE(c.stores["c"]->Commit().ok());
  for (auto& [id, core] : c.cores) core->SetRings(c.old_ring, c.new_ring, 42);
  c["d"].AllowTransfers(true);
  c["d"].Tick(2005);  // within the write's deadline
  c.Pump(2005, dropped);
  ASSERT_EQ(c["d"].Synced(), 42u) << "d did not finish its copy";
  for (auto& [to, msg] : held.sends) {
    if (!c.Dropped("c", to)) c[to].OnMessage("c", msg, 2010);
  }
  const ClientResult w = AwaitResult(c, 7, 2010, dropped);
  EXPECT_GE(c["a"].consistent_stats().refused_owners, 1u) << "a answered the stale prepare";
  if (!w.status.ok()) {
    EXPECT_EQ(w.status.code(), Status::Code::kUnavailable) << w.status.ToString();
  }

  const ClientResult r = ReadOverBAndDAfterTheSwitch(c, key);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  if (w.status.ok()) {
    EXPECT_EQ(Only(r.object), "v2") << "an acknowledged CONSISTENT write was lost in the move";
  } else {
    EXPECT_EQ(Only(r.object), "v1");
  }
}

// The coordinator's side: c learns of the move while its prepare over the old owners is
// out (a has not yet; d has). That round's accept goes out over the old owners (a round
// keeps the owners it was prepared with) but c's own vote is refused by the acceptor
// rule, so it is not chosen by {c, a}; every prepare c sends after it learned of the move
// -- the retry and the write queued behind it -- is over the joint owners, and once a
// catches up the queued write is chosen by joint majorities and read back after the
// switch by the new owners alone.
TEST(PaxosMove, ACoordinatorThatLearnsOfAMoveMidRoundRunsItsNextRoundsOverTheJointOwners) {
  Cluster c;
  const std::string key = KeyLedInOldRingBy(c, "c");
  const uint64_t o = OwnersFingerprint({"c", "a", "b"}), p = OwnersFingerprint({"a", "b", "d"});
  ASSERT_TRUE(c.Consistent("c", key, false, "v1", 1000).status.ok());
  c.Isolate("b", true);
  c.isolated = {"b"};
  c.results.clear();
  c["c"].StartConsistent(7, key, false, Value("v2", 2000), 2000);
  c["c"].StartConsistent(8, key, false, Value("v3", 2000), 2000);  // queued behind 7
  Outbox held = c["c"].TakeOutbox();
  ASSERT_TRUE(c.stores["c"]->Commit().ok());
  c["c"].SetRings(c.old_ring, c.new_ring, 42);
  c["d"].SetRings(c.old_ring, c.new_ring, 42);
  int stale_prepares = 0, joint_prepares = 0;
  auto watch = [&](const std::string& from, const std::string& to, const PeerMessage& m) {
    if (const auto* pr = std::get_if<PaxosPrepare>(&m); pr && from == "c") {
      if (pr->read_owners == o && pr->write_owners == p) {
        ++joint_prepares;
      } else {
        ++stale_prepares;
      }
    }
    return c.Dropped(from, to);
  };
  for (auto& [to, msg] : held.sends) {
    if (!c.Dropped("c", to)) c[to].OnMessage("c", msg, 2010);
  }
  std::map<uint64_t, ClientResult> done;
  for (int64_t t = 2010; t < 6000 && done.size() < 2; t += 10) {
    if (t == 2100) c["a"].SetRings(c.old_ring, c.new_ring, 42);  // gossip reaches a
    for (auto& [id, core] : c.cores) core->Tick(t);
    c.Pump(t, watch);
    for (const ClientResult& r : c.results) done.emplace(r.client_req, r);
  }
  ASSERT_EQ(done.size(), 2u);
  ASSERT_TRUE(done[8].status.ok()) << done[8].status.ToString();
  EXPECT_EQ(stale_prepares, 0) << "c prepared a round over the old owners after it knew the move";
  EXPECT_GT(joint_prepares, 0);
  EXPECT_GT(c["c"].consistent_stats().joint_rounds, 0u);
  EXPECT_EQ(Only(c.stores["d"]->ReadPaxos(key).value().value), "v3");  // accepted directly

  const ClientResult r = ReadOverBAndDAfterTheSwitch(c, key);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(Only(r.object), "v3");
}

// The coordinator's own vote comes first: c prepared a round over the old owners
// {c, a, b} (b cut off), then learned of the move before a's promise came back. Its own
// acceptor now refuses that round (R2), so the round cannot be chosen as planned. c used
// to send its accept to a anyway: a accepted v2 over the old owners, the round failed on
// c's refusal, and the write ended in -TIMEOUT (outcome unknown), with v2 left in a's
// acceptor state. Now c sends no accept once its own vote is refused: nothing was
// proposed anywhere, so it retries over the joint owners and the write is acknowledged.
TEST(PaxosMove, ACoordinatorWhoseOwnAcceptIsRefusedSendsNoAcceptsAndRetries) {
  Cluster c;
  const std::string key = KeyLedInOldRingBy(c, "c");
  const uint64_t o = OwnersFingerprint({"c", "a", "b"});
  ASSERT_TRUE(c.Consistent("c", key, false, "v1", 1000).status.ok());
  c.Isolate("b", true);
  c.isolated = {"b"};
  c.results.clear();
  c["c"].StartConsistent(7, key, false, Value("v2", 2000), 2000);
  Outbox held = c["c"].TakeOutbox();  // the prepare over {c, a, b}
  ASSERT_TRUE(c.stores["c"]->Commit().ok());
  for (const char* id : {"c", "d"}) c[id].SetRings(c.old_ring, c.new_ring, 42);
  int stale_accepts = 0;
  auto watch = [&](const std::string& from, const std::string& to, const PeerMessage& m) {
    if (const auto* acc = std::get_if<PaxosAccept>(&m); acc && from == "c") {
      stale_accepts += acc->read_owners == o && acc->write_owners == o;
    }
    return c.Dropped(from, to);
  };
  for (auto& [to, msg] : held.sends) {
    if (!c.Dropped("c", to)) c[to].OnMessage("c", msg, 2010);  // a promises (old view)
  }
  c.Pump(2010, watch);  // a's promise reaches c, which knows the move now
  EXPECT_EQ(stale_accepts, 0) << "c sent accepts for a round its own acceptor refused";
  EXPECT_NE(Only(c.stores["a"]->ReadPaxos(key).value().value), "v2");
  c["a"].SetRings(c.old_ring, c.new_ring, 42);  // gossip reaches a
  const ClientResult r = AwaitResult(c, 7, 2020, watch);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(stale_accepts, 0);
  EXPECT_GE(c["c"].consistent_stats().retries, 1u);
  EXPECT_EQ(Only(c.stores["d"]->ReadPaxos(key).value().value), "v2");  // a joint round chose it
}

// The same rule when the coordinator's own acceptor promised a higher ballot between
// its prepare and its accept (a competing proposer): no accept leaves, the round backs
// off above that ballot and the write is acknowledged, not -TIMEOUT.
TEST(PaxosMove, ACoordinatorOutbidAtItsOwnAcceptorRetriesAboveTheHigherBallot) {
  Cluster c;
  const std::string key = KeyLedBy(c, "b");
  ASSERT_TRUE(c.Consistent("b", key, false, "v1", 1000).status.ok());
  c.results.clear();
  c["b"].StartConsistent(7, key, false, Value("v2", 2000), 2000);
  Outbox held = c["b"].TakeOutbox();  // prepares to a and c
  ASSERT_TRUE(c.stores["b"]->Commit().ok());
  const Ballot mine = c.stores["b"]->ReadPaxos(key).value().promised;
  // A competitor's prepare, above b's ballot, reaches b's acceptor only.
  const uint64_t o = OwnersFingerprint({"a", "b", "c"});
  c["b"].OnMessage("a", PaxosPrepare{999, key, Ballot{mine.counter + 5, "a"}, o, o}, 2005);
  (void)c["b"].TakeOutbox();  // the promise to the competitor: not delivered
  ASSERT_TRUE(c.stores["b"]->Commit().ok());
  int first_round_accepts = 0;
  auto watch = [&](const std::string& from, const std::string&, const PeerMessage& m) {
    if (const auto* acc = std::get_if<PaxosAccept>(&m); acc && from == "b") {
      first_round_accepts += acc->ballot == mine;
    }
    return false;
  };
  for (auto& [to, msg] : held.sends) c[to].OnMessage("b", msg, 2010);
  const ClientResult r = AwaitResult(c, 7, 2010, watch);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_TRUE(r.applied);
  EXPECT_EQ(first_round_accepts, 0) << "b sent accepts for a ballot its own acceptor refused";
  EXPECT_GT(c.stores["b"]->ReadPaxos(key).value().accepted.counter, mine.counter + 5);
}

}  // namespace
}  // namespace itsuka::core
