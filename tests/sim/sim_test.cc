// Deterministic whole-cluster simulation of the real NodeCore.
//
// Several nodes run in one process over a virtual network (random delay, reordering,
// drops, partitions) and a virtual clock; nodes crash (losing what they had staged but
// not committed, and every request in flight) and restart. Clients write unique values
// (blind, or with the context of an earlier read) and read, through random nodes.
// After the faults heal and read repair has run, the invariants are checked:
//   - every acknowledged write is present, or causally superseded by a write whose
//     context saw it (no lost update);
//   - no sibling is lost: a write missing from the final object was seen by another
//     write's context;
//   - the replicas of every key hold identical objects (convergence).
// Each seed runs twice and must produce the same trace (no hidden nondeterminism).
// ITSUKA_SIM_SEED=N replays one seed; ITSUKA_SIM_SEEDS=K sets how many run.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>

#include "common/hash.h"
#include "core/node_core.h"
#include "server/hint_table.h"
#include "storage/mem_engine.h"

namespace itsuka::core {
namespace {

class SimStore : public LocalStore {
 public:
  Result<Object> Read(std::string_view key) override {
    auto s = staged_.find(std::string(key));
    if (s != staged_.end()) return s->second;
    auto d = durable_.find(std::string(key));
    return d == durable_.end() ? Object() : d->second;
  }
  void Stage(std::string_view key, Object obj) override { staged_[std::string(key)] = std::move(obj); }
  void Commit() {
    for (auto& [k, v] : staged_) durable_[k] = std::move(v);
    staged_.clear();
  }
  void Crash() { staged_.clear(); }
  const std::map<std::string, Object>& durable() const { return durable_; }

 private:
  std::map<std::string, Object> durable_, staged_;
};

struct Event {
  int64_t at;
  uint64_t seq;
  std::string from, to;
  PeerMessage msg;
  bool operator>(const Event& o) const { return std::tie(at, seq) > std::tie(o.at, o.seq); }
};

struct Ack {
  std::string key, value;
};

class Cluster {
 public:
  // hints: sloppy quorum and hinted handoff on (a HintTable over a MemEngine per node,
  // which survives crashes like the node's durable store).
  Cluster(uint64_t seed, int nodes, bool hints = false) : rng_(seed), hints_(hints) {
    for (int i = 0; i < nodes; ++i) ids_.push_back("n" + std::to_string(i));
    for (const std::string& id : ids_) {
      auto& n = nodes_[id];
      n.store = std::make_unique<SimStore>();
      n.hint_engine = std::make_unique<storage::MemEngine>();
      Boot(id);
    }
  }

  // ---- faults ----
  void Crash(const std::string& id) {
    Node& n = nodes_[id];
    if (!n.up) return;
    n.up = false;
    n.store->Crash();
    n.core.reset();
    n.hints.reset();  // staged hints are lost; committed ones stay in hint_engine
      outcome_unknown_ += static_cast<int>(n.pending.size());  // clients see a closed connection
    n.pending.clear();
    trace_ += "crash " + id + ";";
    UpdateReachability();
  }
  void Restart(const std::string& id) {
    if (nodes_[id].up) return;
    Boot(id);
    trace_ += "restart " + id + ";";
    UpdateReachability();
  }
  void Partition(std::set<std::string> side) {
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

  // ---- client operations ----
  void Put(const std::string& via, const std::string& key, const std::string& value,
           std::optional<VClock> ctx, int w) {
    Node& n = nodes_[via];
    if (!n.up) return;
    WriteSpec spec;
    spec.version = NewVersion{false, value, 0, now_};
    if (ctx) {
      spec.has_context = true;
      spec.context = *ctx;
    }
    uint64_t req = next_client_req_++;
    n.pending[req] = "put " + key + " " + value;
    n.core->StartPut(req, key, spec, w, 0, now_);
    Drain(via);
  }
  void Del(const std::string& via, const std::string& key, int w) {
    Node& n = nodes_[via];
    if (!n.up) return;
    WriteSpec spec;
    spec.version = NewVersion{true, "", 0, now_};
    spec.cond = WriteSpec::Cond::kIfLive;
    uint64_t req = next_client_req_++;
    n.pending[req] = "del " + key;
    n.core->StartPut(req, key, spec, w, 0, now_);
    Drain(via);
  }
  void Get(const std::string& via, const std::string& key, int r) {
    Node& n = nodes_[via];
    if (!n.up) return;
    uint64_t req = next_client_req_++;
    n.pending[req] = "get " + key;
    n.core->StartGet(req, key, r, 0, now_);
    Drain(via);
  }

  // Runs the network and clocks for `ms` of virtual time.
  void Run(int64_t ms) {
    const int64_t until = now_ + ms;
    while (true) {
      int64_t next_tick = (now_ / 50 + 1) * 50;
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
          nodes_[id].core->ReplayHints(now_, now_);
          Drain(id);
        }
      }
    }
    now_ = until;
  }

  // Reads every key through every node with R=all until all replicas agree.
  void RepairAll(const std::vector<std::string>& keys) {
    for (int round = 0; round < 4; ++round) {
      for (const std::string& key : keys) {
        for (const std::string& id : ids_) Get(id, key, 1);
      }
      Run(3000);
    }
  }

  Object FinalObject(const std::string& key) {
    Object all;
    for (const std::string& id : ids_) {
      auto it = nodes_[id].store->durable().find(key);
      if (it != nodes_[id].store->durable().end()) all = Merge(all, it->second);
    }
    return all;
  }

  // Whether every replica of `key` has seen `dot` (holds it or what superseded it).
  bool OnEveryReplica(const std::string& key, const Dot& dot) {
    for (const std::string& id : nodes_[ids_[0]].core->Replicas(key)) {
      auto it = nodes_[id].store->durable().find(key);
      if (it == nodes_[id].store->durable().end() || !it->second.clock.Covers(dot)) return false;
    }
    return true;
  }

  // Replicas of `key` that disagree with the merge of all copies.
  std::vector<std::string> Divergent(const std::string& key) {
    Object all = FinalObject(key);
    std::vector<std::string> out;
    for (const std::string& id : nodes_[ids_[0]].core->Replicas(key)) {
      auto it = nodes_[id].store->durable().find(key);
      Object mine = it == nodes_[id].store->durable().end() ? Object() : it->second;
      if (!(mine == all)) out.push_back(id);
    }
    return out;
  }

  const std::vector<std::string>& ids() const { return ids_; }
  // Hints still stored on live nodes, and the handoff counters summed over the
  // cores that are running now (a crash resets a core's counters).
  uint64_t StoredHints() {
    uint64_t keys = 0;
    for (const std::string& id : ids_) {
      if (!nodes_[id].hints) continue;
      for (const auto& [t, u] : nodes_[id].hints->Usage()) keys += u.keys;
    }
    return keys;
  }
  HandoffStats handoff_totals() const { return handoff_totals_; }
  std::mt19937_64& rng() { return rng_; }
  const std::vector<Ack>& acked() const { return acked_; }
  const std::vector<WriteRecord>& writes() const { return writes_; }
  const std::map<std::string, VClock>& last_read_ctx() const { return last_read_ctx_; }
  const std::string& trace() const { return trace_; }
  int ok_puts() const { return ok_puts_; }
  int failed_ops() const { return failed_ops_; }
  int ok_deletes() const { return ok_deletes_; }

 private:
  struct Node {
    std::unique_ptr<SimStore> store;
    std::unique_ptr<NodeCore> core;
    std::unique_ptr<storage::MemEngine> hint_engine;
    std::unique_ptr<server::HintTable> hints;
    bool up = false;
    std::map<uint64_t, std::string> pending;  // client requests in flight here
  };

  void Boot(const std::string& id) {
    Node& n = nodes_[id];
    NodeOptions o;
    o.n = 3;
    o.request_timeout_ms = 1000;
    o.record_writes = true;
    n.core = std::make_unique<NodeCore>(id, *n.store, o);
    last_stats_[id] = HandoffStats{};
    n.core->SetRing(Ring::Create(16, ids_, 1).value());
    if (hints_) {
      n.hints = std::make_unique<server::HintTable>(*n.hint_engine, HintLimits{6, 1 << 20},
                                                    [this] { return now_; });
      EXPECT_TRUE(n.hints->Load().ok());
      HandoffOptions h;
      h.rate_keys_per_s = 200;
      h.max_inflight_per_target = 4;
      h.max_hint_age_ms = 60000;
      n.core->SetHintStore(n.hints.get(), h);
    }
    n.up = true;
  }

  bool Linked(const std::string& a, const std::string& b) const {
    return blocked_.count({a, b}) == 0;
  }

  void UpdateReachability() {
    for (const std::string& a : ids_) {
      if (!nodes_[a].up) continue;
      for (const std::string& b : ids_) {
        nodes_[a].core->SetReachable(b, nodes_[b].up && Linked(a, b));
      }
    }
  }

  void Deliver(const Event& e) {
    Node& n = nodes_[e.to];
    if (!n.up || !Linked(e.from, e.to)) return;
    trace_ += "d" + std::to_string(e.seq) + ";";
    n.core->OnMessage(e.from, e.msg, now_);
    Drain(e.to);
  }

  // Commit first, then release the outbox: the order the real shell follows.
  void Drain(const std::string& id) {
    Node& n = nodes_[id];
    Outbox out = n.core->TakeOutbox();
    n.store->Commit();
    if (n.hints) {  // the same group commit as the data, before anything is sent
      WriteBatch batch;
      n.hints->AppendStaged(&batch);
      EXPECT_TRUE(n.hint_engine->Write(batch, false).ok());
      n.hints->Committed(true);
      const HandoffStats& hs = n.core->handoff_stats();
      HandoffStats& last = last_stats_[id];
      handoff_totals_.written += hs.written - last.written;
      handoff_totals_.replayed += hs.replayed - last.replayed;
      handoff_totals_.refused += hs.refused - last.refused;
      handoff_totals_.dropped += hs.dropped - last.dropped;
      last = hs;
    }
    for (auto& w : out.writes) writes_.push_back(std::move(w));
    for (auto& [to, msg] : out.sends) {
      uint64_t seq = next_seq_++;
      if (!Linked(id, to)) continue;
      if (std::uniform_real_distribution<double>(0, 1)(rng_) < drop_) continue;
      int64_t delay = 1 + static_cast<int64_t>(rng_() % 40);
      queue_.push(Event{now_ + delay, seq, id, to, std::move(msg)});
    }
    for (ClientResult& r : out.results) {
      auto it = n.pending.find(r.client_req);
      if (it == n.pending.end()) continue;
      const std::string what = it->second;
      n.pending.erase(it);
      trace_ += what + "=" + std::to_string(static_cast<int>(r.status.code())) + ";";
      if (!r.status.ok()) {
        ++failed_ops_;
        continue;
      }
      if (what.rfind("del ", 0) == 0) {
        ++ok_deletes_;
      } else if (what.rfind("put ", 0) == 0) {
        size_t sp = what.find(' ', 4);
        acked_.push_back(Ack{what.substr(4, sp - 4), what.substr(sp + 1)});
        ++ok_puts_;
      } else {
        last_read_ctx_[what.substr(4)] = r.object.clock;
      }
    }
  }

  std::mt19937_64 rng_;
  const bool hints_;
  HandoffStats handoff_totals_;
  std::map<std::string, HandoffStats> last_stats_;  // per live core, for handoff_totals_
  std::vector<std::string> ids_;
  std::map<std::string, Node> nodes_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  std::set<std::pair<std::string, std::string>> blocked_;
  double drop_ = 0;
  int64_t now_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t next_client_req_ = 1;
  std::vector<Ack> acked_;
  std::vector<WriteRecord> writes_;
  std::map<std::string, VClock> last_read_ctx_;
  std::string trace_;
  int ok_puts_ = 0, ok_deletes_ = 0, failed_ops_ = 0, outcome_unknown_ = 0;
};

struct RunResult {
  std::string failure;  // empty: all invariants held
  uint64_t digest = 0;
  int ok_puts = 0;
  int ok_deletes = 0;
  uint64_t hints_written = 0, hints_replayed = 0, hints_refused = 0;
  int acked_everywhere_before_repair = 0;
};

// hints: sloppy quorum and hinted handoff on, over more keys than a target may keep
// hints for (so refusals happen too); the hints must all be handed off after the heal.
RunResult RunSeed(uint64_t seed, bool hints = false) {
  Cluster c(seed, 3 + static_cast<int>(seed % 3), hints);
  auto& rng = c.rng();
  std::vector<std::string> keys = {"k0", "k1", "k2", "k3"};
  for (int i = 4; hints && i < 12; ++i) keys.push_back("k" + std::to_string(i));
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  int value = 0;
  for (int step = 0; step < 150; ++step) {
    const std::string via = pick(c.ids());
    const std::string key = pick(keys);
    switch (rng() % 10) {
      case 0: case 1: case 2:
        c.Put(via, key, "v" + std::to_string(value++), std::nullopt, 1 + static_cast<int>(rng() % 3));
        break;
      case 3: case 4: {
        auto ctx = c.last_read_ctx().find(key);
        c.Put(via, key, "v" + std::to_string(value++),
              ctx == c.last_read_ctx().end() ? std::nullopt : std::optional<VClock>(ctx->second), 2);
        break;
      }
      case 5:
        if (rng() % 3 == 0) c.Del(via, key, 1 + static_cast<int>(rng() % 2));
        else c.Get(via, key, 1 + static_cast<int>(rng() % 3));
        break;
      case 6: c.Get(via, key, 1 + static_cast<int>(rng() % 3)); break;
      case 7:
        if (rng() % 4 == 0) c.Crash(pick(c.ids()));
        else c.Restart(pick(c.ids()));
        break;
      case 8:
        if (rng() % 3 == 0) {
          std::set<std::string> side;
          for (const std::string& id : c.ids()) {
            if (rng() % 2) side.insert(id);
          }
          c.Partition(side);
        } else {
          c.Partition({});
        }
        break;
      case 9: c.set_drop((rng() % 4) * 0.05); break;
    }
    c.Run(static_cast<int64_t>(rng() % 60));
  }
  c.Heal();
  c.Run(5000);
  RunResult res;
  // Before any read repair: how many acknowledged writes already reached every replica
  // (a figure, not an invariant: without anti-entropy nothing else carries them).
  for (const Ack& a : c.acked()) {
    for (const WriteRecord& w : c.writes()) {
      if (w.key == a.key && w.value == a.value) {
        res.acked_everywhere_before_repair += c.OnEveryReplica(a.key, w.dot) ? 1 : 0;
        break;
      }
    }
  }
  if (hints) {
    res.hints_written = c.handoff_totals().written;
    res.hints_replayed = c.handoff_totals().replayed;
    res.hints_refused = c.handoff_totals().refused;
    if (c.StoredHints() != 0) {
      res.failure = std::to_string(c.StoredHints()) + " hints not handed off 5 s after the heal";
      return res;
    }
  }
  c.RepairAll(keys);

  res.ok_puts = c.ok_puts();
  res.ok_deletes = c.ok_deletes();
  // Which writes' dots were superseded by some write's context.
  auto superseded = [&](const std::string& key, const Dot& d) {
    for (const WriteRecord& w : c.writes()) {
      if (w.key == key && w.context.Covers(d)) return true;
    }
    return false;
  };
  for (const std::string& key : keys) {
    Object fin = c.FinalObject(key);
    std::vector<std::string> div = c.Divergent(key);
    if (!div.empty()) {
      res.failure = "replicas of " + key + " did not converge (e.g. " + div[0] + ")";
      return res;
    }
    for (const WriteRecord& w : c.writes()) {
      if (w.key != key || !fin.clock.Covers(w.dot)) continue;
      bool present = std::any_of(fin.siblings.begin(), fin.siblings.end(),
                                 [&](const Sibling& s) { return s.dot == w.dot; });
      if (!present && !superseded(key, w.dot)) {
        res.failure = "sibling lost: " + key + " " + w.value + " at " + w.dot.node + ":" +
                      std::to_string(w.dot.counter);
        return res;
      }
    }
  }
  for (const Ack& a : c.acked()) {
    const WriteRecord* rec = nullptr;
    for (const WriteRecord& w : c.writes()) {
      if (w.key == a.key && w.value == a.value) rec = &w;
    }
    if (rec == nullptr) {
      res.failure = "acknowledged write " + a.key + "=" + a.value + " was never coordinated";
      return res;
    }
    Object fin = c.FinalObject(a.key);
    bool present = std::any_of(fin.siblings.begin(), fin.siblings.end(),
                               [&](const Sibling& s) { return s.dot == rec->dot && s.value == a.value; });
    if (!present && !(fin.clock.Covers(rec->dot) && superseded(a.key, rec->dot))) {
      res.failure = "acknowledged write lost: " + a.key + "=" + a.value;
      return res;
    }
  }
  res.digest = Hash64(c.trace());
  return res;
}

TEST(Simulation, InvariantsHoldUnderFaults) {
  std::vector<uint64_t> seeds;
  if (const char* one = std::getenv("ITSUKA_SIM_SEED")) {
    seeds.push_back(std::strtoull(one, nullptr, 10));
  } else {
    int count = 300;
    if (const char* n = std::getenv("ITSUKA_SIM_SEEDS")) count = std::atoi(n);
    for (int i = 1; i <= count; ++i) seeds.push_back(static_cast<uint64_t>(i));
  }
  int total_acked = 0, total_deletes = 0, everywhere = 0;
  for (uint64_t seed : seeds) {
    RunResult a = RunSeed(seed);
    everywhere += a.acked_everywhere_before_repair;
    ASSERT_EQ(a.failure, "") << "seed " << seed << " (replay: ITSUKA_SIM_SEED=" << seed << ")";
    RunResult b = RunSeed(seed);
    ASSERT_EQ(a.digest, b.digest) << "seed " << seed << " is nondeterministic";
    total_acked += a.ok_puts;
    total_deletes += a.ok_deletes;
  }
  // The workload must actually acknowledge writes, or the invariants prove nothing.
  EXPECT_GT(total_acked, static_cast<int>(seeds.size()) * 10);
  std::printf("simulated %zu seeds, %d acknowledged writes checked, %d deletes; %d on every "
              "replica before read repair\n", seeds.size(), total_acked, total_deletes, everywhere);
}

// ---- Sloppy quorum and hinted handoff ------------------------------------------------
// The same workload and invariants with hints on (3 to 5 nodes, so both substitutes and
// coordinator-kept hints occur), plus: every hint is handed off after the heal.
TEST(Simulation, HintedHandoffInvariantsHoldUnderFaults) {
  std::vector<uint64_t> seeds;
  if (const char* one = std::getenv("ITSUKA_SIM_SEED")) {
    seeds.push_back(std::strtoull(one, nullptr, 10));
  } else {
    int count = 300;
    if (const char* n = std::getenv("ITSUKA_SIM_SEEDS")) count = std::atoi(n);
    for (int i = 1; i <= count; ++i) seeds.push_back(static_cast<uint64_t>(i));
  }
  int total_acked = 0, everywhere = 0;
  uint64_t written = 0, replayed = 0, refused = 0;
  for (uint64_t seed : seeds) {
    RunResult a = RunSeed(seed, true);
    everywhere += a.acked_everywhere_before_repair;
    ASSERT_EQ(a.failure, "") << "seed " << seed << " (replay: ITSUKA_SIM_SEED=" << seed << ")";
    RunResult b = RunSeed(seed, true);
    ASSERT_EQ(a.digest, b.digest) << "seed " << seed << " is nondeterministic";
    total_acked += a.ok_puts;
    written += a.hints_written;
    replayed += a.hints_replayed;
    refused += a.hints_refused;
  }
  EXPECT_GT(total_acked, static_cast<int>(seeds.size()) * 10);
  // Hints must actually be written and handed off, or the run proves nothing about them.
  if (seeds.size() >= 20) {
    EXPECT_GT(written, seeds.size());
    EXPECT_GT(replayed, seeds.size() / 2);
  }
  std::printf("simulated %zu seeds with hints: %d acknowledged writes checked, %d on every "
              "replica before read repair; %llu hints written, %llu replayed, %llu refused "
              "(target full)\n",
              seeds.size(), total_acked, everywhere, static_cast<unsigned long long>(written),
              static_cast<unsigned long long>(replayed), static_cast<unsigned long long>(refused));
}

}  // namespace
}  // namespace itsuka::core
