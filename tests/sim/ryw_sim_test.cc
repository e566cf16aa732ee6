// Read-your-writes through one node in the simulator (core/recent_writes.h; issue 16's
// zombie): the fault harness's `delete` workload. Each key is written (W = 2) through a
// random node and, as soon as that write is acknowledged, deleted (W = 2) through the
// same node, while nodes crash and restart and partitions come and go, with sloppy
// quorum and hinted handoff on (5 nodes, so substitutes take writes). Checked after the
// heal and the handoff: every acknowledged DEL found the write (answered :1), and no
// key whose DEL was acknowledged is alive on any node (no zombie).
// ITSUKA_SIM_SEED=N replays one seed (ITSUKA_SIM_TRACE=1 prints a failing one's trace);
// ITSUKA_SIM_RYW_SEEDS=K sets how many run (100 by default, ~5 s; 1000 passed).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "seeds.h"
#include "sim_cluster.h"

namespace itsuka::core::sim {
namespace {

class WriteThenDelete : public Watcher {
 public:
  explicit WriteThenDelete(Cluster* c) : c_(c) { c->Watch(this); }

  void Write(const std::string& via, const std::string& key) {
    WriteSpec s;
    s.version = NewVersion{false, "v" + key, 0, c_->now()};
    Submit(via, key, false, s);
  }
  // Starts the DELs of the writes acknowledged since the last call.
  void DeleteAcked() {
    std::vector<Op> due;
    due.swap(due_);
    for (const Op& op : due) {
      WriteSpec s;
      s.version = NewVersion{true, "", 0, c_->now()};
      s.cond = WriteSpec::Cond::kIfLive;
      Submit(op.via, op.key, true, s);
    }
  }

  void OnResult(const std::string& node, const ClientResult& r) override {
    auto it = ops_.find(r.client_req);
    if (it == ops_.end() || it->second.via != node) return;
    const Op op = it->second;
    ops_.erase(it);
    c_->Note((op.del ? "del " : "set ") + op.key + "@" + op.via + (r.status.ok() ? " ok" : " fail") +
             (r.applied ? ";" : " not-applied;"));
    if (!r.status.ok()) return;
    if (!op.del) {
      due_.push_back(op);
    } else {
      deleted_[op.key] = r.applied;
    }
  }
  // A crash loses the node's requests, and its record: the next command of the key
  // would not be "through the same node" in the sense that holds.
  void OnCrash(const std::string& node) override {
    for (auto it = ops_.begin(); it != ops_.end();) {
      it = it->second.via == node ? ops_.erase(it) : std::next(it);
    }
    std::vector<Op> keep;
    for (const Op& op : due_) {
      if (op.via != node) keep.push_back(op);
    }
    due_.swap(keep);
  }

  // Key -> whether its acknowledged DEL answered :1.
  const std::map<std::string, bool>& deleted() const { return deleted_; }

 private:
  struct Op {
    std::string via, key;
    bool del = false;
  };
  void Submit(const std::string& via, const std::string& key, bool del, const WriteSpec& s) {
    if (!c_->Up(via)) return;
    const uint64_t req = c_->NewRequest();
    ops_[req] = Op{via, key, del};
    c_->node(via).StartPut(req, key, s, 2, 0, c_->now());
    c_->Drain(via);
  }

  Cluster* c_;
  std::map<uint64_t, Op> ops_;
  std::vector<Op> due_;
  std::map<std::string, bool> deleted_;
};

ClusterOptions RywOptions(int64_t window_ms) {
  ClusterOptions o;
  // As the daemon does: a restarted node's request ids never repeat its previous life's,
  // so a late ForwardResult cannot answer (and be recorded for) a new request.
  o.request_ids_per_boot = true;
  o.node.n = 3;
  o.node.request_timeout_ms = 1000;
  o.node.recent_writes.window_ms = window_ms;
  o.network.max_delay_ms = 40;
  o.hints = true;
  o.hint_limits = HintLimits{10000, 64 << 20};
  o.handoff.rate_keys_per_s = 2000;
  o.handoff.max_hint_age_ms = 600000;
  return o;
}

SeedOutcome RunRywSeed(uint64_t seed, int64_t window_ms) {
  Cluster c(seed, RywOptions(window_ms), 5);
  WriteThenDelete client(&c);
  auto& rng = c.rng();
  const std::vector<std::string> ids = c.ids();
  int keys = 0;
  for (int step = 0; step < 400; ++step) {
    const std::string via = ids[rng() % ids.size()];
    const int dice = static_cast<int>(rng() % 12);
    if (dice < 8) {
      client.Write(via, "x" + std::to_string(keys++));
    } else if (dice == 8) {
      // At most two nodes down at once, so W = 2 stays possible.
      int down = 0;
      for (const std::string& id : ids) down += c.Up(id) ? 0 : 1;
      if (c.Up(via) && down < 2) {
        c.Crash(via);
      } else if (!c.Up(via)) {
        c.Restart(via);
      }
    } else if (dice == 9) {
      std::set<std::string> side;
      for (const std::string& id : ids) {
        if (rng() % 3 == 0) side.insert(id);
      }
      c.Partition(side);
    } else if (dice == 10) {
      c.Partition({});
    }
    c.Run(static_cast<int64_t>(rng() % 15));
    client.DeleteAcked();
  }
  c.Heal();
  for (int i = 0; i < 10; ++i) {
    c.Run(100);
    client.DeleteAcked();
  }
  c.Run(5000);  // hints handed off
  SeedOutcome out;
  for (const auto& [key, applied] : client.deleted()) {
    if (!applied) {
      out.failure = "DEL " + key + " answered :0 right after its SET was acknowledged through "
                    "the same node";
      if (std::getenv("ITSUKA_SIM_TRACE")) std::fprintf(stderr, "%s\n", c.trace().c_str());
      return out;
    }
    Object all;
    for (const std::string& id : ids) all = Merge(all, c.Durable(id, key));
    if (!LiveSiblings(all, c.now()).empty()) {
      out.failure = "zombie: " + key + " is alive after its DEL was acknowledged";
      return out;
    }
  }
  if (client.deleted().empty()) out.failure = "no DEL was acknowledged: the run proves nothing";
  out.digest = Hash64(c.trace());
  return out;
}

// Seeds that find the gap with the record off (ITSUKA_SIM_RYW_SEARCH found them, the first
// three; re-picked for the hash-slot placement of data format 2 together with converge's
// handoff probation and transfer retry, which changed the schedules: 1 and 18 stopped
// finding it with the first, 22 and 31 with both).
constexpr uint64_t kSeedsThatFindTheGap[] = {4, 8, 23};

TEST(ReadYourWritesSim, ADelThroughTheNodeThatAckedTheWriteAlwaysFindsIt) {
  const std::vector<uint64_t> seeds = Seeds(100, 1, "ITSUKA_SIM_RYW_SEEDS");
  RunSeedsTwice(seeds, [](uint64_t seed, bool) { return RunRywSeed(seed, 60000); });
}

// The self-test: with the record off (window 0, which is today's main) the workload
// finds the gap. ITSUKA_SIM_RYW_SEARCH=K lists the first K seeds that find it.
TEST(ReadYourWritesSim, WithoutTheRecordTheWorkloadFindsTheGap) {
  if (const char* k = std::getenv("ITSUKA_SIM_RYW_SEARCH")) {
    int found = 0;
    for (uint64_t seed = 1; seed < 5000 && found < std::atoi(k); ++seed) {
      const SeedOutcome o = RunRywSeed(seed, 0);
      if (!o.failure.empty()) {
        std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed), o.failure.c_str());
        ++found;
      }
    }
    return;
  }
  for (uint64_t seed : kSeedsThatFindTheGap) {
    // The gap itself, not a run that proved nothing ("no DEL was acknowledged").
    const std::string f = RunRywSeed(seed, 0).failure;
    EXPECT_TRUE(f.find("answered :0") != std::string::npos || f.rfind("zombie", 0) == 0)
        << "seed " << seed << ": " << f;
  }
}

}  // namespace
}  // namespace itsuka::core::sim
