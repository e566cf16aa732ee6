// A partition move carries Paxos acceptor state (core/node_core.h, "Moves"): the merge
// rule, the store's scan of acceptor states, and NodeCores replacing a primary while a
// chosen value sits only in acceptor states.
#include <gtest/gtest.h>

#include <functional>

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

  // Moves every partition from {a, b, c} to {a, b, d}; d copies from whichever old
  // primaries are not isolated, then the move completes and c leaves.
  void Move() {
    for (auto& [id, core] : cores) core->SetRings(old_ring, new_ring, 42);
    cores.at("d")->AllowTransfers(true);
    cores.at("d")->Tick(9000);
    Pump(9000, [&](const std::string& from, const std::string& to, const PeerMessage&) {
      return Dropped(from, to);
    });
    ASSERT_EQ(cores.at("d")->Synced(), 42u) << "d did not finish its copy";
    for (auto& [id, core] : cores) core->SetRing(new_ring);
  }
};

// A key whose preference list (both rings) starts with `leader`, so it coordinates the
// key's rounds.
std::string KeyLedBy(const Cluster& c, const std::string& leader) {
  for (int i = 0; i < 100000; ++i) {
    const std::string k = "key" + std::to_string(i);
    if (c.old_ring.PreferenceList(c.old_ring.PartitionOf(Hash64(k)), 3)[0] == leader &&
        c.new_ring.PreferenceList(c.new_ring.PartitionOf(Hash64(k)), 3)[0] == leader) {
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

// A key whose old preference list starts with `leader` (it coordinates the key's rounds
// before the move) and whose new one leaves c out (every key's, here).
std::string KeyLedInOldRingBy(const Cluster& c, const std::string& leader) {
  for (int i = 0; i < 100000; ++i) {
    const std::string k = "key" + std::to_string(i);
    if (c.old_ring.PreferenceList(c.old_ring.PartitionOf(Hash64(k)), 3)[0] == leader) return k;
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

// Stale-view simulator seed 11 (with late messages) in miniature: a round planned
// before a move reaches an old primary after the new one copied that primary's state.
// The key's old primaries are {c, a, b}, its new ones {a, b, d}; b is unreachable. c
// admits a CONSISTENT write of v2 and sends its prepare; the move becomes visible; d
// copies from c and a; only then does the prepare reach a. Were it answered, v2 would
// be chosen by {c, a} behind the copy, and after the switch a round over {b, d} (a
// cut off) would read v1: an acknowledged CONSISTENT write lost. a knows the move, so
// it answers no prepare for the key and the write fails, not applied.
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
  EXPECT_EQ(w.status.code(), Status::Code::kUnavailable) << w.status.ToString();

  for (auto& [id, core] : c.cores) core->SetRing(c.new_ring);
  c.Isolate("b", false);
  c.Isolate("a", true);
  c.isolated = {"a"};
  const ClientResult r = c.Consistent("b", key, true, "", 13000);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  if (w.status.ok()) {
    EXPECT_EQ(Only(r.object), "v2") << "an acknowledged CONSISTENT write was lost in the move";
  } else {
    EXPECT_EQ(Only(r.object), "v1");
  }
}

// The coordinator's side of the same rule: c learns of the move while its prepare is
// out (a has not yet); a's promise comes back. c sends no accept, and the write queued
// behind it starts no round: neither changes an acceptor state after the move was known
// to c, and both fail, not applied.
TEST(PaxosMove, ACoordinatorThatLearnsOfAMoveStartsNothingMoreForTheKey) {
  Cluster c;
  const std::string key = KeyLedInOldRingBy(c, "c");
  ASSERT_TRUE(c.Consistent("c", key, false, "v1", 1000).status.ok());
  c.Isolate("b", true);
  c.isolated = {"b"};
  c.results.clear();
  c["c"].StartConsistent(7, key, false, Value("v2", 2000), 2000);
  c["c"].StartConsistent(8, key, false, Value("v3", 2000), 2000);  // queued behind 7
  Outbox held = c["c"].TakeOutbox();
  ASSERT_TRUE(c.stores["c"]->Commit().ok());
  c["c"].SetRings(c.old_ring, c.new_ring, 42);
  const AcceptorState before = c.stores["c"]->ReadPaxos(key).value();
  int rounds_after = 0;
  auto watch = [&](const std::string& from, const std::string& to, const PeerMessage& m) {
    if (from == "c" && (std::holds_alternative<PaxosPrepare>(m) ||
                        std::holds_alternative<PaxosAccept>(m))) {
      ++rounds_after;
    }
    return c.Dropped(from, to);
  };
  for (auto& [to, msg] : held.sends) {
    if (!c.Dropped("c", to)) c[to].OnMessage("c", msg, 2010);
  }
  const ClientResult first = AwaitResult(c, 7, 2010, watch);
  const ClientResult second = AwaitResult(c, 8, 2010, watch);
  EXPECT_EQ(first.status.code(), Status::Code::kUnavailable) << first.status.ToString();
  EXPECT_EQ(second.status.code(), Status::Code::kUnavailable) << second.status.ToString();
  EXPECT_EQ(rounds_after, 0) << "c sent prepares or accepts for a key it knows is moving";
  EXPECT_EQ(c.stores["c"]->ReadPaxos(key).value(), before);
  EXPECT_EQ(Only(c.stores["a"]->ReadPaxos(key).value().value), "v1");
}

}  // namespace
}  // namespace itsuka::core
