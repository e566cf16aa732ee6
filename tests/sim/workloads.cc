#include "workloads.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace itsuka::core::sim {
namespace {

std::string Pick(std::mt19937_64& rng, const std::vector<std::string>& v) { return v[rng() % v.size()]; }

std::string Code(const Status& s) { return std::to_string(static_cast<int>(s.code())); }

}  // namespace

// ---- EventualClient ----------------------------------------------------------------------

void EventualClient::Submit(const std::string& via, Pending what, const WriteSpec& spec, int n,
                            int pw) {
  if (!c_->Up(via)) return;
  const uint64_t req = c_->NewRequest();
  const auto kind = what.kind;
  const std::string key = what.key;
  what.n = n;
  what.invoke = c_->now();
  pending_[via][req] = std::move(what);
  if (kind == Pending::kGet) {
    c_->node(via).StartGet(req, key, n, 0, c_->now());
  } else {
    c_->node(via).StartPut(req, key, spec, n, pw, c_->now());
  }
  c_->Drain(via);
}

void EventualClient::Put(const std::string& via, const std::string& key, const std::string& value,
                         std::optional<VClock> ctx, int w, int pw) {
  WriteSpec spec;
  spec.version = NewVersion{false, value, 0, c_->now()};
  if (ctx) {
    spec.has_context = true;
    spec.context = *ctx;
  }
  Submit(via, Pending{Pending::kPut, key, value}, spec, w, pw);
}

void EventualClient::Del(const std::string& via, const std::string& key, int w) {
  WriteSpec spec;
  spec.version = NewVersion{true, "", 0, c_->now()};
  spec.cond = WriteSpec::Cond::kIfLive;
  Submit(via, Pending{Pending::kDel, key, ""}, spec, w, 0);
}

void EventualClient::Get(const std::string& via, const std::string& key, int r) {
  Submit(via, Pending{Pending::kGet, key, ""}, WriteSpec(), r, 0);
}

void EventualClient::OnResult(const std::string& node, const ClientResult& r) {
  auto& mine = pending_[node];
  auto it = mine.find(r.client_req);
  if (it == mine.end()) return;
  const Pending what = std::move(it->second);
  mine.erase(it);
  static const char* kNames[] = {"put ", "del ", "get "};
  c_->Note(kNames[what.kind] + what.key + " " + what.value + "=" + Code(r.status) + ";");
  if (!r.status.ok()) {
    ++failed_;
    return;
  }
  switch (what.kind) {
    case Pending::kPut:
      acked_.push_back(Ack{what.key, what.value, c_->now(), what.n});
      ++ok_puts_;
      break;
    case Pending::kDel:
      ++ok_deletes_;
      break;
    case Pending::kGet:
      last_read_ctx_[what.key] = r.object.clock;
      reads_.push_back(EventualRead{node, what.key, what.n, what.invoke, c_->now(), r.object});
      break;
  }
}

// ---- RegisterClient ----------------------------------------------------------------------

void RegisterClient::Start(const std::string& via, Op op) {
  if (!c_->Up(via)) return;
  op.invoke = c_->now();
  const size_t index = history_.size();
  WriteSpec spec;
  const bool read = op.kind == Op::kRead;
  spec.version = NewVersion{op.kind == Op::kDel, op.kind == Op::kDel ? "" : op.value, 0, c_->now()};
  if (op.kind == Op::kNx) spec.cond = WriteSpec::Cond::kNx;
  if (op.kind == Op::kDel) spec.cond = WriteSpec::Cond::kIfLive;
  if (op.kind == Op::kCas) {
    spec.has_context = true;
    spec.context = cas_ctx_[op.key];
  }
  history_.push_back(std::move(op));
  const uint64_t req = c_->NewRequest();
  pending_[via][req] = index;
  const std::string& key = history_[index].key;
  if (!smart_ || c_->rng()() % 2 == 0) {
    c_->node(via).StartConsistent(req, key, read, spec, c_->now());
  } else {
    c_->node(via).core().OnMessage(kClient, ForwardConsistent{req, key, read, spec}, c_->now());
  }
  c_->Drain(via);
}

void RegisterClient::ReadOrWrite(const std::string& via, const std::string& key,
                                 const std::string& value) {
  Start(via, Op{value.empty() ? Op::kRead : Op::kWrite, key, value});
}

void RegisterClient::OnResult(const std::string& node, const ClientResult& r) {
  auto& mine = pending_[node];
  auto it = mine.find(r.client_req);
  if (it == mine.end()) return;
  const size_t index = it->second;
  mine.erase(it);
  Op& op = history_[index];
  op.done = true;
  c_->Note("op" + std::to_string(index) + "=" + Code(r.status) + ";");
  if (r.status.code() == Status::Code::kUnavailable) {
    op.failed = true;
    op.complete = c_->now();
    return;
  }
  if (!r.status.ok()) return;  // timeout: unknown
  op.ok = true;
  op.complete = c_->now();
  op.applied = r.applied;
  if (op.kind != Op::kRead) return;
  read_objects_[index] = r.object;
  std::vector<const Sibling*> live = LiveSiblings(r.object, c_->now());
  op.read_siblings = live.size() > 1;
  if (!live.empty()) op.read_value = live[0]->value;
  op.read_count = r.object.clock.Get(kStrongActor);
  cas_ctx_[op.key] = r.object.clock;
}

// ---- eventual writes under faults ----------------------------------------------------------

namespace {

// Crashes a random node (1 in crash_one_in) or restarts one.
void CrashOrRestart(Cluster& c, uint64_t crash_one_in) {
  auto& rng = c.rng();
  if (rng() % crash_one_in == 0) {
    c.Crash(Pick(rng, c.ids()));
  } else {
    c.Restart(Pick(rng, c.ids()));
  }
}

// Splits the nodes at random (1 in split_one_in) or heals every link.
void SplitOrHeal(Cluster& c, uint64_t split_one_in) {
  auto& rng = c.rng();
  if (rng() % split_one_in == 0) {
    std::set<std::string> side;
    for (const std::string& id : c.ids()) {
      if (rng() % 2) side.insert(id);
    }
    c.Partition(side);
  } else {
    c.Partition({});
  }
}

// Message loss of 0, 5, 10 or 15 %.
void RandomLoss(Cluster& c) { c.set_drop((c.rng()() % 4) * 0.05); }

}  // namespace

void EventualFaults(Cluster& c, EventualClient& client, const std::vector<std::string>& keys) {
  auto& rng = c.rng();
  int value = 0;
  for (int step = 0; step < 150; ++step) {
    const std::string via = Pick(rng, c.ids());
    const std::string key = Pick(rng, keys);
    const int dice = static_cast<int>(rng() % 10);
    switch (dice) {
      case 0: case 1: case 2:
        client.Put(via, key, "v" + std::to_string(value++), std::nullopt, 1 + static_cast<int>(rng() % 3));
        break;
      case 3: case 4: {
        auto ctx = client.last_read_ctx().find(key);
        client.Put(via, key, "v" + std::to_string(value++),
                   ctx == client.last_read_ctx().end() ? std::nullopt : std::optional<VClock>(ctx->second), 2);
        break;
      }
      case 5:
        if (rng() % 3 == 0) {
          client.Del(via, key, 1 + static_cast<int>(rng() % 2));
        } else {
          client.Get(via, key, 1 + static_cast<int>(rng() % 3));
        }
        break;
      case 6:
        client.Get(via, key, 1 + static_cast<int>(rng() % 3));
        break;
      case 7: CrashOrRestart(c, 4); break;
      case 8: SplitOrHeal(c, 3); break;
      case 9: RandomLoss(c); break;
    }
    c.Run(static_cast<int64_t>(rng() % 60));
  }
}

void ReadRepairAll(Cluster& c, EventualClient& client, const std::vector<std::string>& keys,
                   int rounds, int64_t ms_per_round) {
  for (int round = 0; round < rounds; ++round) {
    for (const std::string& key : keys) {
      for (const std::string& id : c.ids()) client.Get(id, key, 1);
    }
    c.Run(ms_per_round);
  }
}

// ---- CONSISTENT registers under faults ---------------------------------------------------

namespace {

// A round cut short: the coordinator of the key dies or is cut off right after starting
// one (the schedules that leave a value accepted by a minority).
void CutShortRound(Cluster& c, RegisterClient& reg, const std::string& via, const std::string& key,
                   int* value) {
  auto& rng = c.rng();
  Op op{rng() % 2 ? Op::kRead : Op::kWrite, key, "v" + std::to_string((*value)++)};
  reg.Start(via, op);
  c.Run(static_cast<int64_t>(rng() % 25));
  const std::string victim = Pick(rng, c.ids());
  const bool crash = rng() % 2;
  if (crash) {
    c.Crash(victim);
  } else {
    c.Partition({victim});
  }
  c.Run(static_cast<int64_t>(rng() % 300));
  if (crash) {
    c.Restart(victim);
  } else {
    c.Partition({});
  }
}

// An eventual write with W = PW = 2 (none without an eventual client).
void EventualPw2(EventualClient* eventual, const std::string& via, const std::string& key, int* value) {
  eventual->Put(via, key, "e" + std::to_string((*value)++), std::nullopt, 2, 2);
}

}  // namespace

void RegisterFaults(Cluster& c, RegisterClient& reg, EventualClient* eventual,
                    const std::vector<std::string>& keys) {
  auto& rng = c.rng();
  int value = 0;
  for (int step = 0; step < 80; ++step) {
    const std::string via = Pick(rng, c.ids());
    const std::string key = Pick(rng, keys);
    if (rng() % 4 == 0) CutShortRound(c, reg, via, key, &value);
    Op op{Op::kRead, key};
    switch (rng() % 14) {
      case 0: case 1: case 2: case 3:
        reg.Start(via, op);
        break;
      case 4: case 5:
        op.kind = Op::kWrite;
        op.value = "v" + std::to_string(value++);
        reg.Start(via, op);
        break;
      case 6:
        op.kind = Op::kNx;
        op.value = "v" + std::to_string(value++);
        reg.Start(via, op);
        break;
      case 7:
        op.kind = Op::kDel;
        reg.Start(via, op);
        break;
      case 8:
        if (reg.HasCasContext(key)) {
          op.kind = Op::kCas;
          op.value = "v" + std::to_string(value++);
          op.token = reg.CasToken(key);
          reg.Start(via, op);
        } else if (eventual != nullptr) {
          EventualPw2(eventual, via, key, &value);
        }
        break;
      case 9: CrashOrRestart(c, 3); break;
      case 10: SplitOrHeal(c, 2); break;
      case 11: RandomLoss(c); break;
      case 12: case 13:
        if (eventual != nullptr) {
          EventualPw2(eventual, via, key, &value);
        } else {
          reg.Start(via, op);
        }
        break;
    }
    c.Run(static_cast<int64_t>(rng() % 80));
  }
}

// ---- membership churn --------------------------------------------------------------------

namespace {

constexpr int kMaxRegisterOpsPerKey = 40;  // the linearizability search stays small

class Churn {
 public:
  Churn(Cluster& c, EventualClient& client, RegisterClient* reg)
      : c_(c), rng_(c.rng()), client_(client), reg_(reg) {}

  ChurnOutcome Run();

 private:
  // Writes through random live members while `ms` of virtual time pass.
  void Load(int64_t ms);
  bool Settle(const char* what);
  void Join();
  void Decommission(const std::vector<std::string>& live);
  void RestartUnderLoss(const std::vector<std::string>& live);

  Cluster& c_;
  std::mt19937_64& rng_;
  EventualClient& client_;
  RegisterClient* reg_;
  ChurnOutcome out_;
  int next_key_ = 0, next_node_ = 3, register_writes_ = 0;
  std::map<std::string, int> register_ops_;
};

void Churn::Load(int64_t ms) {
  for (int64_t t = 0; t < ms; t += 20) {
    std::vector<std::string> live = c_.LiveMembers();
    if (!live.empty() && rng_() % 2 == 0) {
      const std::string k = "k" + std::to_string(next_key_++);
      client_.Put(live[rng_() % live.size()], k, "v" + k, std::nullopt, 2);
    }
    if (reg_ != nullptr && !live.empty() && rng_() % 4 == 0) {
      const std::string k = "s" + std::to_string(rng_() % kChurnRegisterKeys);
      if (register_ops_[k]++ < kMaxRegisterOpsPerKey) {
        reg_->ReadOrWrite(live[rng_() % live.size()], k,
                          rng_() % 2 ? "w" + std::to_string(register_writes_++) : "");
      }
    }
    c_.Run(20);
  }
}

bool Churn::Settle(const char* what) {
  for (int i = 0; i < 60 && !c_.Settled(); ++i) Load(500);
  if (!c_.Settled()) {
    out_.failure = std::string("membership did not settle after ") + what;
    if (std::getenv("ITSUKA_SIM_DEBUG_VIEWS")) {
      for (const std::string& id : c_.ids()) {
        if (!c_.Up(id)) continue;
        std::fprintf(stderr, "%s:", id.c_str());
        for (const auto& [m, st] : c_.ViewOf(id)) {
          std::fprintf(stderr, " %s=%s/%llx", m.c_str(), MemberStatusName(st.status),
                       static_cast<unsigned long long>(st.synced));
        }
        std::fprintf(stderr, " synced-core=%llx pending=%zu allowed?\n",
                     static_cast<unsigned long long>(c_.core(id).Synced()), c_.core(id).TransfersPending());
      }
    }
  }
  return c_.Settled();
}

// A new node that knows one seed only; under load; maybe a partition, a crash mid-copy,
// a decommission while the join is still moving partitions.
void Churn::Join() {
  const std::vector<std::string> live = c_.LiveMembers();
  const std::string id = "n" + std::to_string(next_node_++);
  c_.Start(id, {live[rng_() % live.size()]});
  Load(300 + static_cast<int64_t>(rng_() % 700));
  if (rng_() % 3 == 0) {
    std::set<std::string> side;
    for (const std::string& m : c_.LiveMembers()) {
      if (rng_() % 2) side.insert(m);
    }
    c_.Partition(side);
    Load(1000 + static_cast<int64_t>(rng_() % 1000));
    c_.Partition({});
  }
  if (rng_() % 2) {
    // Any member, the joining node included, crashes in the middle of the transfer.
    std::vector<std::string> cand = c_.LiveMembers();
    cand.push_back(id);
    const std::string victim = cand[rng_() % cand.size()];
    c_.Crash(victim);
    Load(500);
    c_.Start(victim);
  }
  if (rng_() % 3 == 0 && c_.LiveMembers().size() > 3) {
    std::vector<std::string> l2 = c_.LiveMembers();
    const std::string target = l2[rng_() % l2.size()];
    if (c_.Decommission(l2[rng_() % l2.size()], target)) out_.left.insert(target);
    Load(500);
  }
}

void Churn::Decommission(const std::vector<std::string>& live) {
  const std::string target = live[rng_() % live.size()];
  const std::string via = live[rng_() % live.size()];
  // A node gated after a restart makes no membership change (core::Node::Leave); the
  // operator then retries through another member, as tools/fault/membership.py does.
  bool ok = c_.Decommission(via, target);
  for (size_t i = 0; !ok && i < live.size(); ++i) ok = c_.Decommission(live[i], target);
  if (ok) out_.left.insert(target);
  Load(300 + static_cast<int64_t>(rng_() % 700));
  const int fault = static_cast<int>(rng_() % 3);
  if (fault == 1) {
    std::vector<std::string> now_live = c_.LiveMembers();
    const std::string victim = now_live[rng_() % now_live.size()];
    if (victim != target) {
      c_.Crash(victim);
      Load(500);
      c_.Start(victim);
    }
  } else if (fault == 2 && ok) {
    // The leaving node dies for good: its partitions come from the other replicas.
    c_.Crash(target);
  }
}

void Churn::RestartUnderLoss(const std::vector<std::string>& live) {
  const std::string victim = live[rng_() % live.size()];
  c_.set_drop(0.1);
  c_.Crash(victim);
  Load(1000);
  c_.Start(victim);
  c_.set_drop(0);
}

ChurnOutcome Churn::Run() {
  for (const char* id : {"n0", "n1", "n2"}) c_.Start(id, {"n0", "n1", "n2"});
  c_.Run(3000);
  if (!c_.Settled() || c_.LiveMembers().size() != 3) {
    out_.failure = "initial cluster did not form";
    return out_;
  }
  Load(500);
  for (int step = 0; step < 6; ++step) {
    const std::vector<std::string> live = c_.LiveMembers();
    const int kind = static_cast<int>(rng_() % 3);
    if (kind == 0 || live.size() <= 3) {
      Join();
      if (!Settle("a join")) return out_;
    } else if (kind == 1) {
      Decommission(live);
      if (!Settle("a decommission")) return out_;
    } else {
      RestartUnderLoss(live);
      if (!Settle("a restart")) return out_;
    }
    ++out_.changes;
    Load(200);
  }
  c_.Run(3000);
  if (!c_.Settled()) out_.failure = "membership did not settle at the end";
  return out_;
}

}  // namespace

ChurnOutcome MembershipChurn(Cluster& c, EventualClient& client, RegisterClient* reg) {
  return Churn(c, client, reg).Run();
}

// ---- drifting replicas and anti-entropy ---------------------------------------------------

void DriftingReplicas(Cluster& c) {
  auto& rng = c.rng();
  const std::vector<std::string> ids = c.ids();
  for (int i = 0; i < 400; ++i) {
    const std::string via = ids[rng() % ids.size()];
    const std::string key = "k" + std::to_string(rng() % 60);
    const uint64_t dice = rng() % 100;
    if (dice < 3) {
      const std::string victim = ids[rng() % ids.size()];
      if (victim != "n0") c.Crash(victim);  // n0 coordinates the repair later
    } else if (dice < 8) {
      for (const std::string& id : ids) c.Restart(id);
    } else if (dice < 11) {
      c.Partition({ids[rng() % ids.size()]});
    } else if (dice < 14) {
      c.Partition({});
    } else if (c.Up(via)) {
      WriteSpec spec;
      const bool del = dice < 35;
      spec.version = NewVersion{del, del ? "" : "v" + std::to_string(i), 0, c.now()};
      c.node(via).StartPut(c.NewRequest(), key, spec, 1, 0, c.now());
      c.Drain(via);
    }
    c.Run(static_cast<int64_t>(rng() % 40));
  }
  c.Heal();
  c.Run(3000);  // let in-flight writes land; then nothing but repair moves data
}

RepairTotals RepairEverything(Cluster& c, const std::string& coordinator, double drop) {
  c.set_drop(drop);
  RepairProgress p;
  p.job.id = 1;
  for (uint32_t q = 0; q < c.store(coordinator).Partitions(); ++q) p.job.partitions.push_back(q);
  EXPECT_TRUE(c.StartRepair(coordinator, p).ok());
  for (int i = 0; i < 100000 && c.repair(coordinator).running(); ++i) c.Run(50);
  EXPECT_FALSE(c.repair(coordinator).running());
  c.set_drop(0);
  return c.repair(coordinator).progress().totals;
}

}  // namespace itsuka::core::sim
