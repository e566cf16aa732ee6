// Read-your-writes through one node (core/recent_writes.h; issue 16's zombie): five
// NodeCores over a scripted network in which each node has its own view of who is
// reachable and single links can be cut, so that a write's W acks come from a primary
// and a sloppy substitute, its coordinator then dies, and the client's next command
// through the same node is coordinated by another primary whose quorum never saw the
// write. Also the cache's own bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "common/hash.h"
#include "core/node_core.h"
#include "core/recent_writes.h"
#include "map_hint_store.h"
#include "map_store.h"

namespace itsuka::core {
namespace {

struct Member {
  explicit Member(const std::string& name, const NodeOptions& o) : core(name, store, o) {}
  MapStore store;
  MapHintStore hints;
  NodeCore core;
  bool up = true;
};

// Messages are delivered in the order they were sent; a cut link or a crashed
// receiver loses them.
class ScriptedCluster {
 public:
  explicit ScriptedCluster(NodeOptions o = Options()) {
    for (const std::string& n : names_) {
      auto m = std::make_unique<Member>(n, o);
      m->core.SetRing(Ring::Create(32, names_, 1).value());
      HandoffOptions h;
      h.sloppy_quorum = true;
      m->core.SetHintStore(&m->hints, h);
      members_.emplace(n, std::move(m));
    }
  }
  static NodeOptions Options() {
    NodeOptions o;
    o.n = 3;
    return o;
  }
  NodeCore& core(const std::string& n) { return members_.at(n)->core; }
  Member& member(const std::string& n) { return *members_.at(n); }
  const std::vector<std::string>& names() const { return names_; }

  // `viewer` believes `node` is (un)reachable.
  void See(const std::string& viewer, const std::string& node, bool up) {
    core(viewer).SetReachable(node, up);
  }
  void Cut(const std::string& a, const std::string& b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void HealLinks() { cut_.clear(); }
  void Crash(const std::string& n) {
    member(n).up = false;
    for (const std::string& other : names_) {
      if (other != n) See(other, n, false);
    }
  }
  void Restart(const std::string& n) {
    member(n).up = true;
    for (const std::string& other : names_) {
      if (other != n) See(other, n, true);
    }
  }

  // Takes every node's outbox and delivers until nothing is left; returns the client
  // results (by client request id).
  std::map<uint64_t, ClientResult> Run(int64_t now_ms) {
    std::map<uint64_t, ClientResult> results;
    for (int rounds = 0; rounds < 1000; ++rounds) {
      for (const std::string& n : names_) Collect(n, &results);
      if (queue_.empty()) break;
      while (!queue_.empty()) {
        auto [from, to, msg] = queue_.front();
        queue_.pop_front();
        if (cut_.count({from, to}) || !member(to).up) continue;
        core(to).OnMessage(from, msg, now_ms);
      }
    }
    return results;
  }
  ClientResult Put(const std::string& via, uint64_t id, const std::string& key, WriteSpec spec,
                   int w, int64_t now_ms) {
    core(via).StartPut(id, key, std::move(spec), w, 0, now_ms);
    std::map<uint64_t, ClientResult> r = Run(now_ms);
    EXPECT_EQ(r.count(id), 1u);
    return r[id];
  }
  ClientResult Get(const std::string& via, uint64_t id, const std::string& key, int r,
                   int64_t now_ms) {
    core(via).StartGet(id, key, r, 0, now_ms);
    std::map<uint64_t, ClientResult> res = Run(now_ms);
    EXPECT_EQ(res.count(id), 1u);
    return res[id];
  }
  // The merge of every copy and every hint of `key` in the cluster: what the cluster
  // converges to once hints are handed off and repair ran.
  Object Everything(const std::string& key) {
    Object all;
    for (const std::string& n : names_) {
      Member& m = member(n);
      auto it = m.store.data.find(key);
      if (it != m.store.data.end()) all = Merge(all, it->second);
      for (const auto& [target, hints] : m.hints.hints) {
        auto h = hints.find(key);
        if (h != hints.end()) all = Merge(all, h->second.object);
      }
    }
    return all;
  }

 private:
  void Collect(const std::string& n, std::map<uint64_t, ClientResult>* results) {
    Member& m = member(n);
    if (!m.up) {
      m.core.TakeOutbox();  // a crashed node's effects never leave
      return;
    }
    Outbox out = m.core.TakeOutbox();
    for (auto& [to, msg] : out.sends) queue_.push_back({n, to, std::move(msg)});
    for (ClientResult& r : out.results) (*results)[r.client_req] = std::move(r);
  }

  struct InFlight {
    std::string from, to;
    PeerMessage msg;
  };
  std::vector<std::string> names_{"a", "b", "c", "d", "e"};
  std::map<std::string, std::unique_ptr<Member>> members_;
  std::set<std::pair<std::string, std::string>> cut_;
  std::deque<InFlight> queue_;
};

WriteSpec SetOf(const std::string& v, WriteSpec::Cond cond = WriteSpec::Cond::kNone) {
  WriteSpec s;
  s.version = NewVersion{false, v, 0, 1};
  s.cond = cond;
  return s;
}

WriteSpec Del() {
  WriteSpec s;
  s.version = NewVersion{true, "", 0, 2};
  s.cond = WriteSpec::Cond::kIfLive;
  return s;
}

// Who is who for one key: the entry node (not a primary), the primaries p[0..2] in
// preference order, and the fallbacks f[0..1] in ring order.
struct Roles {
  std::string key, entry;
  std::vector<std::string> p, f;
};

// The values of o's live siblings at time 100 (by value: nothing points into o).
std::vector<std::string> LiveValues(const Object& o) {
  std::vector<std::string> out;
  for (const Sibling* sib : LiveSiblings(o, 100)) out.push_back(sib->value);
  return out;
}
using Values = std::vector<std::string>;

Roles RolesFor(ScriptedCluster& c) {
  for (int i = 0;; ++i) {
    Roles r;
    r.key = "x0-" + std::to_string(i);
    r.p = c.core("a").Replicas(r.key);
    r.f = c.core("a").ring()->Fallbacks(c.core("a").ring()->PartitionOfKey(r.key), 3);
    if (r.f.size() != 2) continue;
    // The client talks to the second fallback, so that the first can be the
    // substitute that takes the write.
    r.entry = r.f[1];
    return r;
  }
}

// The scenario of issue 16. SET through the entry node is forwarded to p0, which
// believes p1 unreachable (a partition that just healed) and whose link to p2 is
// cut: its W = 2 acks are its own and f0's hint for p1. Then p0 is killed; the DEL
// through the entry node goes to p1, which believes f0 unreachable, so it reads from
// itself, p2 and f1 (standing in for p0): none of them holds the write.
void SetUpTheMiss(ScriptedCluster& c, const Roles& r) {
  c.See(r.p[0], r.p[1], false);
  c.Cut(r.p[0], r.p[2]);
  ClientResult set = c.Put(r.entry, 1, r.key, SetOf("vx"), 2, 0);
  ASSERT_TRUE(set.status.ok()) << set.status.ToString();
  ASSERT_TRUE(set.applied);
  // Where the write is: p0's copy and f0's hint for p1, nowhere else.
  ASSERT_EQ(c.member(r.p[0]).store.data.count(r.key), 1u);
  ASSERT_EQ(c.member(r.f[0]).hints.hints[r.p[1]].count(r.key), 1u);
  ASSERT_EQ(c.member(r.p[1]).store.data.count(r.key), 0u);
  ASSERT_EQ(c.member(r.p[2]).store.data.count(r.key), 0u);
  c.Crash(r.p[0]);
  c.HealLinks();
  c.See(r.p[0], r.p[1], true);
  c.See(r.p[1], r.f[0], false);
}

TEST(ReadYourWrites, ADelThroughTheSameNodeSeesTheWriteASubstituteTook) {
  ScriptedCluster c;
  const Roles r = RolesFor(c);
  SetUpTheMiss(c, r);
  ClientResult del = c.Put(r.entry, 2, r.key, Del(), 2, 10);
  ASSERT_TRUE(del.status.ok()) << del.status.ToString();
  // Before the fix: applied == false (DEL answered :0) and the value came back.
  EXPECT_TRUE(del.applied) << "DEL answered :0 for the write just acknowledged through "
                           << r.entry;
  // Heal: p0 is back with its copy, f0 still holds its hint for p1.
  c.Restart(r.p[0]);
  c.See(r.p[1], r.f[0], true);
  EXPECT_TRUE(LiveValues(c.Everything(r.key)).empty())
      << "the key is alive after the heal (a zombie)";
  // Hand the hints off: every primary ends up with the tombstone on top.
  for (const std::string& n : c.names()) c.core(n).ReplayHints(20, 1000);
  c.Run(20);
  for (const std::string& p : r.p) {
    EXPECT_TRUE(LiveValues(c.member(p).store.data[r.key]).empty()) << p;
  }
}

// The reproduction: with the cache off (window 0, which is today's main) the DEL
// misses the write, answers :0, and the key is alive once the cluster heals.
TEST(ReadYourWrites, WithoutTheCacheTheDelMissesTheWriteAndTheKeyComesBack) {
  NodeOptions o = ScriptedCluster::Options();
  o.recent_writes.window_ms = 0;
  ScriptedCluster c(o);
  const Roles r = RolesFor(c);
  SetUpTheMiss(c, r);
  ClientResult del = c.Put(r.entry, 2, r.key, Del(), 2, 10);
  ASSERT_TRUE(del.status.ok()) << del.status.ToString();
  EXPECT_FALSE(del.applied);
  c.Restart(r.p[0]);
  EXPECT_EQ(LiveValues(c.Everything(r.key)), Values{"vx"});
}

TEST(ReadYourWrites, NxAndXxThroughTheSameNodeSeeTheWrite) {
  {
    ScriptedCluster c;
    const Roles r = RolesFor(c);
    SetUpTheMiss(c, r);
    ClientResult nx = c.Put(r.entry, 2, r.key, SetOf("other", WriteSpec::Cond::kNx), 2, 10);
    ASSERT_TRUE(nx.status.ok()) << nx.status.ToString();
    EXPECT_FALSE(nx.applied) << "SET NX wrote over a value just acknowledged";
    EXPECT_EQ(LiveValues(c.Everything(r.key)), Values{"vx"});
  }
  {
    ScriptedCluster c;
    const Roles r = RolesFor(c);
    SetUpTheMiss(c, r);
    ClientResult xx = c.Put(r.entry, 2, r.key, SetOf("vy", WriteSpec::Cond::kXx), 2, 10);
    ASSERT_TRUE(xx.status.ok()) << xx.status.ToString();
    EXPECT_TRUE(xx.applied) << "SET XX found no value just after one was acknowledged";
    // It supersedes the first value rather than standing beside it.
    EXPECT_EQ(LiveValues(c.Everything(r.key)), Values{"vy"});
  }
}

TEST(ReadYourWrites, APlainSetAndAReadThroughTheSameNodeBuildOnTheWrite) {
  ScriptedCluster c;
  const Roles r = RolesFor(c);
  SetUpTheMiss(c, r);
  // A quorum read through the entry node asks p1 and p2 (p0 is down): neither has it.
  ClientResult get = c.Get(r.entry, 2, r.key, 2, 10);
  ASSERT_TRUE(get.status.ok()) << get.status.ToString();
  EXPECT_EQ(LiveValues(get.object), Values{"vx"});
  // A blind SET supersedes the value rather than making a sibling of it.
  ClientResult set = c.Put(r.entry, 3, r.key, SetOf("vz"), 2, 20);
  ASSERT_TRUE(set.status.ok()) << set.status.ToString();
  EXPECT_EQ(LiveValues(c.Everything(r.key)), Values{"vz"});
}

// What holds is per node: a DEL through another node has no record of the write.
TEST(ReadYourWrites, IsPerNodeAndEndsWithTheWindow) {
  NodeOptions o = ScriptedCluster::Options();
  o.recent_writes.window_ms = 1000;
  {
    ScriptedCluster c(o);
    const Roles r = RolesFor(c);
    SetUpTheMiss(c, r);
    ClientResult del = c.Put(r.p[1], 2, r.key, Del(), 2, 10);
    ASSERT_TRUE(del.status.ok());
    EXPECT_FALSE(del.applied);  // p1 itself never acknowledged the write: the gap stays
  }
  {
    ScriptedCluster c(o);
    const Roles r = RolesFor(c);
    SetUpTheMiss(c, r);
    c.core(r.entry).Tick(1001);
    EXPECT_EQ(c.core(r.entry).recent_writes().size(), 0u);
    ClientResult del = c.Put(r.entry, 2, r.key, Del(), 2, 1001);
    ASSERT_TRUE(del.status.ok());
    EXPECT_FALSE(del.applied);  // past the window
  }
}

// A write staged in a round whose commit fails exists nowhere: it is not remembered.
TEST(ReadYourWrites, AFailedCommitForgetsWhatItsRoundRecorded) {
  ScriptedCluster c;
  const std::string key = "k";
  const std::string coord = c.core("a").Replicas(key)[0];
  NodeCore& n = c.core(coord);
  n.StartPut(1, key, SetOf("v"), 1, 0, 0);  // W = 1: answered in this round
  Outbox out = n.TakeOutbox();
  ASSERT_EQ(out.results.size(), 1u);
  ASSERT_TRUE(out.results[0].status.ok());
  EXPECT_EQ(n.recent_writes().size(), 1u);
  n.CommitFailed(Status::IOError("disk full"));
  EXPECT_EQ(n.recent_writes().size(), 0u);
  EXPECT_EQ(n.recent_writes().stats().dropped, 1u);
}

// ---- The cache's bounds -------------------------------------------------------------

Object ObjectOf(const std::string& actor, const std::string& value) {
  return ApplyWrite(Object(), VClock(), actor, NewVersion{false, value, 0, 1}, ObjectLimits())
      .value();
}

TEST(RecentWrites, KeepsAtMostMaxKeysAndMaxBytesAndDropsOversizedObjects) {
  RecentWritesOptions o;
  o.max_keys = 2;
  o.max_bytes = 1000;
  o.max_entry_bytes = 600;
  o.window_ms = 100;
  RecentWrites r(o);
  r.Record("k1", ObjectOf("a", "v1"), 0, 1);
  r.Record("k2", ObjectOf("a", "v2"), 0, 1);
  r.Record("k3", ObjectOf("a", "v3"), 0, 1);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_TRUE(r.Get("k1", 0).empty());  // the oldest went
  EXPECT_FALSE(r.Get("k3", 0).empty());
  EXPECT_EQ(r.stats().evicted, 1u);
  r.Record("big", ObjectOf("a", std::string(700, 'x')), 0, 1);
  EXPECT_TRUE(r.Get("big", 0).empty());
  EXPECT_EQ(r.stats().too_big, 1u);
  r.Record("k4", ObjectOf("a", std::string(500, 'x')), 0, 1);
  r.Record("k5", ObjectOf("a", std::string(500, 'y')), 0, 1);
  EXPECT_LE(r.bytes(), 1000u);
  EXPECT_EQ(r.size(), 1u);
  EXPECT_FALSE(r.Get("k5", 0).empty());
}

TEST(RecentWrites, MergesWritesOfOneKeyAndForgetsThemAfterTheWindow) {
  RecentWritesOptions o;
  o.window_ms = 100;
  RecentWrites r(o);
  r.Record("k", ObjectOf("a", "v1"), 0, 1);
  r.Record("k", ObjectOf("b", "v2"), 10, 2);  // concurrent: both kept
  EXPECT_EQ(r.Get("k", 50).siblings.size(), 2u);
  EXPECT_EQ(r.Get("k", 111).siblings.size(), 0u);  // outside the window
  r.Expire(111);
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.bytes(), 0u);
  r.Record("k", ObjectOf("a", "v1"), 200, 3);
  r.Record("j", ObjectOf("a", "v1"), 200, 4);
  r.DropRound(3);
  EXPECT_TRUE(r.Get("k", 200).empty());
  EXPECT_FALSE(r.Get("j", 200).empty());
  // An entry outside the window that was not swept yet is replaced, not merged: its
  // versions would otherwise outlive the window (bounded by it, below the tombstone grace).
  r.Record("e", ObjectOf("a", "old"), 300, 5);
  r.Record("e", ObjectOf("b", "new"), 401, 6);
  EXPECT_EQ(LiveValues(r.Get("e", 401)), std::vector<std::string>{"new"});
  EXPECT_EQ(r.Get("e", 502).siblings.size(), 0u);
  RecentWrites off(RecentWritesOptions{4096, 1 << 20, 1 << 20, 0});
  off.Record("k", ObjectOf("a", "v1"), 0, 1);
  EXPECT_EQ(off.size(), 0u);
}

}  // namespace
}  // namespace itsuka::core
