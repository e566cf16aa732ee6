// Deterministic simulation of CONSISTENT operations (core/paxos.h) over the real
// NodeCore: a register workload per key (reads, blind writes, NX writes, deletes and
// compare-and-set by context), issued through random nodes while messages are dropped,
// delayed and reordered, the network partitions and nodes crash and restart (losing
// whatever they had staged but not committed, and every request in flight).
//
// Checks, per seed:
//   - the CONSISTENT history of every key is linearizable (Wing & Gong search with
//     memoization, as in Lowe's and Porcupine's checkers) against a register model whose
//     state is (value, number of applied writes); `-UNAVAILABLE` ops must not have taken
//     effect, `-TIMEOUT` and lost ones may or may not have;
//   - no dot ever names two different values in anything a reader or a replica holds
//     (the dotted-version-vector rule, with strong writes' dots from a shared actor);
//   - the documented eventual-write guarantee: a CONSISTENT read started after an
//     eventual write was acknowledged with PW=2 (N=3) sees it (its clock covers its dot).
// Each seed runs twice and must produce the same trace. ITSUKA_SIM_SEED=N replays one
// seed; ITSUKA_SIM_SEEDS=K sets how many run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <unordered_set>

#include "common/hash.h"
#include "core/node_core.h"
#include "linearizability.h"

namespace itsuka::core {
namespace {

using simcheck::Describe;
using simcheck::Linearizable;
using simcheck::Op;

class PaxosSimStore : public LocalStore {
 public:
  Result<Object> Read(std::string_view key) override {
    auto s = staged_.find(std::string(key));
    if (s != staged_.end()) return s->second;
    auto d = durable_.find(std::string(key));
    return d == durable_.end() ? Object() : d->second;
  }
  void Stage(std::string_view key, Object obj) override {
    staged_[std::string(key)] = std::move(obj);
  }
  Result<AcceptorState> ReadPaxos(std::string_view key) override {
    auto s = staged_paxos_.find(std::string(key));
    if (s != staged_paxos_.end()) return s->second;
    auto d = durable_paxos_.find(std::string(key));
    return d == durable_paxos_.end() ? AcceptorState() : d->second;
  }
  void StagePaxos(std::string_view key, AcceptorState st) override {
    staged_paxos_[std::string(key)] = std::move(st);
  }
  void Commit() {
    for (auto& [k, v] : staged_) durable_[k] = std::move(v);
    for (auto& [k, v] : staged_paxos_) durable_paxos_[k] = std::move(v);
    staged_.clear();
    staged_paxos_.clear();
  }
  void Crash() {
    staged_.clear();
    staged_paxos_.clear();
  }
  const std::map<std::string, Object>& durable() const { return durable_; }

 private:
  std::map<std::string, Object> durable_, staged_;
  std::map<std::string, AcceptorState> durable_paxos_, staged_paxos_;
};


struct Event {
  int64_t at;
  uint64_t seq;
  std::string from, to;
  PeerMessage msg;
  bool operator>(const Event& o) const { return std::tie(at, seq) > std::tie(o.at, o.seq); }
};

constexpr const char* kClient = "client";

class Cluster {
 public:
  Cluster(uint64_t seed, int nodes) : rng_(seed) {
    for (int i = 0; i < nodes; ++i) ids_.push_back("n" + std::to_string(i));
    for (const std::string& id : ids_) {
      nodes_[id].store = std::make_unique<PaxosSimStore>();
      Boot(id);
    }
  }

  void Crash(const std::string& id) {
    NodeState& n = nodes_[id];
    if (!n.up) return;
    n.up = false;
    n.store->Crash();
    n.core.reset();
    n.pending.clear();  // their clients see a closed connection: outcome unknown
    trace_ += "crash " + id + ";";
    UpdateReachability();
  }
  void Restart(const std::string& id) {
    if (nodes_[id].up) return;
    Boot(id);
    trace_ += "restart " + id + ";";
    UpdateReachability();
  }
  void Partition(const std::set<std::string>& side) {
    blocked_.clear();
    for (const std::string& a : ids_) {
      for (const std::string& b : ids_) {
        if (side.count(a) != side.count(b)) blocked_.insert({a, b});
      }
    }
    trace_ += "partition;";
    UpdateReachability();
  }
  void Heal() {
    blocked_.clear();
    for (const std::string& id : ids_) Restart(id);
    drop_ = 0;
    UpdateReachability();
  }
  void set_drop(double p) { drop_ = p; }

  // Starts a CONSISTENT operation; its Op is updated as it completes.
  void Consistent(const std::string& via, Op op) {
    NodeState& n = nodes_[via];
    if (!n.up) return;
    op.invoke = now_;
    const size_t index = history_.size();
    WriteSpec spec;
    bool read = op.kind == Op::kRead;
    spec.version = NewVersion{op.kind == Op::kDel, op.kind == Op::kDel ? "" : op.value, 0, now_};
    if (op.kind == Op::kNx) spec.cond = WriteSpec::Cond::kNx;
    if (op.kind == Op::kDel) spec.cond = WriteSpec::Cond::kIfLive;
    if (op.kind == Op::kCas) {
      spec.has_context = true;
      spec.context = cas_ctx_[op.key];
    }
    history_.push_back(std::move(op));
    const uint64_t req = next_client_req_++;
    n.pending[req] = index;
    if (rng_() % 2 == 0) {
      n.core->StartConsistent(req, history_[index].key, read, spec, now_);
    } else {
      // A "smart client" that talks to a node of its choice as if it were the first
      // reachable primary: rounds then start on different primaries at once (duels,
      // and reads that meet a value accepted by a minority).
      n.core->OnMessage(kClient, ForwardConsistent{req, history_[index].key, read, spec}, now_);
    }
    Drain(via);
  }
  // An eventual (non-CONSISTENT) write with W = PW = w.
  void Eventual(const std::string& via, const std::string& key, const std::string& value, int w) {
    NodeState& n = nodes_[via];
    if (!n.up) return;
    WriteSpec spec;
    spec.version = NewVersion{false, value, 0, now_};
    const uint64_t req = next_client_req_++;
    n.eventual[req] = value;
    n.core->StartPut(req, key, spec, w, w, now_);
    Drain(via);
  }

  void Run(int64_t ms) {
    const int64_t until = now_ + ms;
    while (true) {
      int64_t next_tick = (now_ / 20 + 1) * 20;
      int64_t next_msg = queue_.empty() ? INT64_MAX : queue_.top().at;
      int64_t t = std::min(next_tick, next_msg);
      if (t > until) break;
      now_ = t;
      if (next_msg <= next_tick) {
        Event e = queue_.top();
        queue_.pop();
        Deliver(e);
      } else {
        for (const std::string& id : ids_) {
          if (!nodes_[id].up) continue;
          nodes_[id].core->Tick(now_);
          Drain(id);
        }
      }
    }
    now_ = until;
  }

  const std::vector<std::string>& ids() const { return ids_; }
  std::mt19937_64& rng() { return rng_; }
  std::vector<Op>& history() { return history_; }
  const std::string& trace() const { return trace_; }
  const std::string& dot_violation() const { return dot_violation_; }
  const std::string& eventual_violation() const { return eventual_violation_; }
  int eventual_checked() const { return eventual_checked_; }
  bool HasCasContext(const std::string& key) const { return cas_ctx_.count(key) > 0; }
  uint64_t CasToken(const std::string& key) const { return cas_ctx_.at(key).Get(kStrongActor); }
  void CheckDurableDots() {
    for (const std::string& id : ids_) {
      for (const auto& [key, obj] : nodes_[id].store->durable()) NoteDots(key, obj);
    }
  }

 private:
  struct NodeState {
    std::unique_ptr<PaxosSimStore> store;
    std::unique_ptr<NodeCore> core;
    bool up = false;
    std::map<uint64_t, size_t> pending;        // client req -> history index
    std::map<uint64_t, std::string> eventual;  // client req -> eventual value
  };
  struct EventualAck {
    std::string key;
    Dot dot;
    int64_t acked_at;
  };

  void Boot(const std::string& id) {
    NodeState& n = nodes_[id];
    NodeOptions o;
    o.n = 3;
    o.request_timeout_ms = 600;
    o.record_writes = true;
    o.first_request_id = (++boots_) << 32;
    n.core = std::make_unique<NodeCore>(id, *n.store, o);
    n.core->SetRing(Ring::Create(16, ids_, 1).value());
    n.up = true;
  }

  bool Linked(const std::string& a, const std::string& b) const {
    return blocked_.count({a, b}) == 0;
  }

  void UpdateReachability() {
    for (const std::string& a : ids_) {
      if (!nodes_[a].up) continue;
      for (const std::string& b : ids_)
        nodes_[a].core->SetReachable(b, nodes_[b].up && Linked(a, b));
    }
  }

  void Deliver(const Event& e) {
    NodeState& n = nodes_[e.to];
    if (!n.up || !Linked(e.from, e.to)) return;
    trace_ += "d" + std::to_string(e.seq) + ";";
    n.core->OnMessage(e.from, e.msg, now_);
    Drain(e.to);
  }

  void NoteDots(const std::string& key, const Object& obj) {
    for (const Sibling& s : obj.siblings) {
      auto [it, inserted] = dots_.emplace(std::make_pair(key, s.dot), s.value);
      if (!inserted && it->second != s.value && dot_violation_.empty()) {
        dot_violation_ = key + ": dot " + s.dot.node + ":" + std::to_string(s.dot.counter) +
                         " names both '" + it->second + "' and '" + s.value + "'";
      }
    }
  }

  // Commit first, then release the outbox: the order the real shell follows.
  void Drain(const std::string& id) {
    NodeState& n = nodes_[id];
    Outbox out = n.core->TakeOutbox();
    n.store->Commit();
    for (WriteRecord& w : out.writes) {
      if (w.dot.node != kStrongActor) written_dots_[w.value] = w.dot;
    }
    for (auto& [to, msg] : out.sends) {
      if (to == kClient) {
        if (auto* r = std::get_if<ConsistentResult>(&msg)) {
          out.results.push_back(ClientResult{
              r->req_id, Status::FromCode(static_cast<Status::Code>(r->code), r->message),
              r->applied, r->object});
        }
        continue;
      }
      uint64_t seq = next_seq_++;
      if (const auto* w = std::get_if<ReplicaWrite>(&msg)) NoteDots(w->key, w->object);
      if (!Linked(id, to)) continue;
      if (std::uniform_real_distribution<double>(0, 1)(rng_) < drop_) continue;
      int64_t delay = 1 + static_cast<int64_t>(rng_() % 40);
      if (rng_() % 10 == 0) delay += 150;  // an occasional long delay: reordering
      queue_.push(Event{now_ + delay, seq, id, to, std::move(msg)});
    }
    for (ClientResult& r : out.results) {
      auto ev = n.eventual.find(r.client_req);
      if (ev != n.eventual.end()) {
        trace_ += "ev" + ev->second + "=" + std::to_string(static_cast<int>(r.status.code())) + ";";
        auto dot = written_dots_.find(ev->second);
        if (r.status.ok() && dot != written_dots_.end()) {
          eventual_acks_.push_back(EventualAck{"", dot->second, now_});
          eventual_acks_.back().key = eventual_keys_[ev->second];
        }
        n.eventual.erase(ev);
        continue;
      }
      auto it = n.pending.find(r.client_req);
      if (it == n.pending.end()) continue;
      Op& op = history_[it->second];
      n.pending.erase(it);
      op.done = true;
      trace_ += "op" + std::to_string(&op - history_.data()) + "=" +
                std::to_string(static_cast<int>(r.status.code())) + ";";
      if (r.status.code() == Status::Code::kUnavailable) {
        op.failed = true;
        op.complete = now_;
        continue;
      }
      if (!r.status.ok()) continue;  // timeout: unknown
      op.ok = true;
      op.complete = now_;
      op.applied = r.applied;
      if (op.kind == Op::kRead) {
        NoteDots(op.key, r.object);
        std::vector<const Sibling*> live = LiveSiblings(r.object, now_);
        op.read_siblings = live.size() > 1;
        if (!live.empty()) op.read_value = live[0]->value;
        op.read_count = r.object.clock.Get(kStrongActor);
        cas_ctx_[op.key] = r.object.clock;
        for (const EventualAck& a : eventual_acks_) {
          if (a.key != op.key || a.acked_at >= op.invoke) continue;
          ++eventual_checked_;
          if (!r.object.clock.Covers(a.dot) && eventual_violation_.empty()) {
            eventual_violation_ =
                "CONSISTENT read of " + op.key + " at " + std::to_string(op.invoke) +
                " missed an eventual write acknowledged with PW=2 at " + std::to_string(a.acked_at);
          }
        }
      }
    }
  }

 public:
  std::map<std::string, std::string> eventual_keys_;  // eventual value -> key

 private:
  std::mt19937_64 rng_;
  std::vector<std::string> ids_;
  std::map<std::string, NodeState> nodes_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  std::set<std::pair<std::string, std::string>> blocked_;
  double drop_ = 0;
  int64_t now_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t next_client_req_ = 1;
  std::vector<Op> history_;
  std::map<std::string, VClock> cas_ctx_;  // key -> clock of its last CONSISTENT read
  std::map<std::pair<std::string, Dot>, std::string> dots_;
  std::map<std::string, Dot> written_dots_;
  std::vector<EventualAck> eventual_acks_;
  std::string trace_, dot_violation_, eventual_violation_;
  int eventual_checked_ = 0;
  uint64_t boots_ = 0;
};

struct RunResult {
  std::string failure;
  uint64_t digest = 0;
  int ok_ops = 0, ok_writes = 0, ok_reads = 0, unknown = 0, unavailable = 0, eventual_checked = 0;
};

RunResult RunSeed(uint64_t seed, bool with_eventual) {
  Cluster c(seed, 3 + static_cast<int>(seed % 3));
  auto& rng = c.rng();
  const std::vector<std::string> keys = {"k0", "k1", "k2"};
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  int value = 0;
  for (int step = 0; step < 80; ++step) {
    const std::string via = pick(c.ids());
    const std::string key = pick(keys);
    if (rng() % 4 == 0) {
      // Rounds cut short: the coordinator of the key dies or is cut off right after
      // starting one (the schedules that leave a value accepted by a minority).
      Op op{rng() % 2 ? Op::kRead : Op::kWrite, key, "v" + std::to_string(value++)};
      c.Consistent(via, op);
      c.Run(static_cast<int64_t>(rng() % 25));
      const std::string victim = pick(c.ids());
      const bool crash = rng() % 2;
      if (crash)
        c.Crash(victim);
      else
        c.Partition({victim});
      c.Run(static_cast<int64_t>(rng() % 300));
      if (crash)
        c.Restart(victim);
      else
        c.Partition({});
    }
    Op op{Op::kRead, key};
    switch (rng() % 14) {
      case 0:
      case 1:
      case 2:
      case 3:
        c.Consistent(via, op);
        break;
      case 4:
      case 5:
        op.kind = Op::kWrite;
        op.value = "v" + std::to_string(value++);
        c.Consistent(via, op);
        break;
      case 6:
        op.kind = Op::kNx;
        op.value = "v" + std::to_string(value++);
        c.Consistent(via, op);
        break;
      case 7:
        op.kind = Op::kDel;
        c.Consistent(via, op);
        break;
      case 8:
        if (c.HasCasContext(key)) {
          op.kind = Op::kCas;
          op.value = "v" + std::to_string(value++);
          op.token = c.CasToken(key);
          c.Consistent(via, op);
        } else if (with_eventual) {
          std::string v = "e" + std::to_string(value++);
          c.eventual_keys_[v] = key;
          c.Eventual(via, key, v, 2);
        }
        break;
      case 9:
        if (rng() % 3 == 0)
          c.Crash(pick(c.ids()));
        else
          c.Restart(pick(c.ids()));
        break;
      case 10:
        if (rng() % 2 == 0) {
          std::set<std::string> side;
          for (const std::string& id : c.ids()) {
            if (rng() % 2) side.insert(id);
          }
          c.Partition(side);
        } else {
          c.Partition({});
        }
        break;
      case 11:
        c.set_drop((rng() % 4) * 0.05);
        break;
      case 12:
      case 13:
        if (with_eventual) {
          std::string v = "e" + std::to_string(value++);
          c.eventual_keys_[v] = key;
          c.Eventual(via, key, v, 2);
        } else {
          c.Consistent(via, op);
        }
        break;
    }
    c.Run(static_cast<int64_t>(rng() % 80));
  }
  c.Heal();
  c.Run(3000);
  c.CheckDurableDots();

  RunResult res;
  if (!c.dot_violation().empty()) {
    res.failure = c.dot_violation();
    return res;
  }
  if (!c.eventual_violation().empty()) {
    res.failure = c.eventual_violation();
    return res;
  }
  res.eventual_checked = c.eventual_checked();
  for (const std::string& key : keys) {
    // With eventual writes in the mix the register model does not apply (they are not
    // in the CONSISTENT history); that run checks the eventual-write guarantee instead.
    std::vector<const Op*> ops;
    for (const Op& op : c.history()) {
      if (op.key != key) continue;
      if (op.ok) {
        ++res.ok_ops;
        (op.kind == Op::kRead ? res.ok_reads : res.ok_writes)++;
      } else if (op.failed) {
        ++res.unavailable;
      } else {
        ++res.unknown;
      }
      if (op.failed) continue;
      if (op.kind == Op::kRead && !op.ok) continue;  // an unanswered read constrains nothing
      ops.push_back(&op);
    }
    std::string why;
    if (!with_eventual && !Linearizable(ops, &why)) {
      res.failure = "key " + key + ": " + why + "; history:";
      for (const Op& op : c.history()) {
        if (op.key == key)
          res.failure += "\n  " + op.key + " " + Describe(op) + (op.failed ? " UNAVAILABLE" : "");
      }
      return res;
    }
  }
  res.digest = Hash64(c.trace());
  return res;
}

std::vector<uint64_t> Seeds(int default_count) {
  std::vector<uint64_t> seeds;
  if (const char* one = std::getenv("ITSUKA_SIM_SEED")) {
    seeds.push_back(std::strtoull(one, nullptr, 10));
    return seeds;
  }
  int count = default_count;
  if (const char* n = std::getenv("ITSUKA_SIM_SEEDS")) count = std::atoi(n);
  for (int i = 1; i <= count; ++i) seeds.push_back(static_cast<uint64_t>(i));
  return seeds;
}

void RunAll(bool with_eventual) {
  std::vector<uint64_t> seeds = Seeds(200);
  RunResult total;
  for (uint64_t seed : seeds) {
    RunResult a = RunSeed(seed, with_eventual);
    ASSERT_EQ(a.failure, "") << "seed " << seed << " (replay: ITSUKA_SIM_SEED=" << seed << ")";
    RunResult b = RunSeed(seed, with_eventual);
    ASSERT_EQ(a.digest, b.digest) << "seed " << seed << " is nondeterministic";
    total.ok_ops += a.ok_ops;
    total.ok_reads += a.ok_reads;
    total.ok_writes += a.ok_writes;
    total.unknown += a.unknown;
    total.unavailable += a.unavailable;
    total.eventual_checked += a.eventual_checked;
  }
  // The workload must get operations through, or linearizability proves nothing.
  EXPECT_GT(total.ok_reads, static_cast<int>(seeds.size()) * 5);
  EXPECT_GT(total.ok_writes, static_cast<int>(seeds.size()) * 3);
  if (with_eventual && seeds.size() > 10) EXPECT_GT(total.eventual_checked, 0);
  std::printf(
      "simulated %zu seeds: %d CONSISTENT ops ok (%d reads, %d writes), %d unknown, "
      "%d unavailable, %d eventual-write observations checked\n",
      seeds.size(), total.ok_ops, total.ok_reads, total.ok_writes, total.unknown, total.unavailable,
      total.eventual_checked);
}

TEST(ConsistentSimulation, RegisterIsLinearizableUnderFaults) { RunAll(false); }

TEST(ConsistentSimulation, SeesEventualWritesAckedByTwoPrimaries) { RunAll(true); }

// A model check of the checker itself: a stale read after a completed write is not
// linearizable, a read of a concurrent write is.
TEST(ConsistentSimulation, CheckerRejectsStaleRead) {
  Op w{Op::kWrite, "k", "a"};
  w.invoke = 0;
  w.complete = 10;
  w.ok = true;
  w.done = true;
  Op r{Op::kRead, "k"};
  r.invoke = 20;
  r.complete = 30;
  r.ok = true;
  r.done = true;  // read nil after the write
  std::string why;
  EXPECT_FALSE(Linearizable({&w, &r}, &why));
  r.read_value = "a";
  r.read_count = 1;
  EXPECT_TRUE(Linearizable({&w, &r}, &why));
  r.invoke = 5;  // concurrent: nil is fine too
  r.read_value.reset();
  r.read_count = 0;
  EXPECT_TRUE(Linearizable({&w, &r}, &why));
}

}  // namespace
}  // namespace itsuka::core
