// Deterministic simulation of nodes restarted from a stale saved view, and of kill -9
// at every step of a move (issue 16). Every node is the production core::Node over
// gossip at the daemon's interval (1 s) and core tick (20 ms). A crash is a kill -9:
// what the node committed (objects, Paxos acceptor state, hints, the member view it
// last persisted -- what server::GossipMembership keeps in the meta column family)
// survives; a restart restores that view (Gossiper::Restore, a new incarnation) and
// the data, exactly as server::Node::OpenNode does.
//
// RestartAfterRemoval / RestartAfterOthersMoved: a 4- or 5-node cluster forms; a member
// is killed; while it is down the cluster removes it (decommission of a stopped node;
// the first change of RestartAfterRemoval), or joins a new node, or decommissions
// another member (sometimes two changes; a join or a decommission of another cannot
// finish while a member is down -- transfers wait until every member knows the new
// ring -- so the restart then meets the move in flight); then it is restarted with its
// old saved view and data -- partitioned from every member but one that was cut off
// from the majority before the last writes (the issue's scenario), or beside one cut
// off only at the restart, or beside one cut off before the change (which never heard
// of it), or with no partition.
// A burst of operations goes through the restarted node at once, and traffic through
// every up node (it included) runs throughout: CONSISTENT reads and writes of k0..k2,
// eventual W=2 writes and R=2 reads of z0..z2 (N=3).
//
// MoveStep: a 3- or 4-node cluster joins a node or decommissions one, and a node (the
// moving one or another member) is killed at one step of the move, by seed: before the
// change is visible to every member, while a partition transfer is pending, after every
// transfer finished (no node has one pending; `synced` being gossiped) but before the
// ring switched everywhere, right after the switch. (The instant between a transfer's last batch
// being staged and its commit cannot be hit from outside: the harness commits after
// every input, as the daemon does before it sends anything.)
// It is restarted later from the view it had saved then (stale). Same traffic.
//
// IssueSchedule: the issue's own sequence of steps, on 4 nodes, fixed.
//
// Checked at the end of every seed (after a heal, the membership settling, read repair
// of z0..z2 through every live member and a CONSISTENT read of k0..k2 through each):
//   - every key's CONSISTENT history is linearizable (linearizability.h), so no
//     acknowledged CONSISTENT write is lost and no read is stale;
//   - R+W>N: an R=2 read started after a W=2 write was acknowledged sees it or a
//     successor (checkers.h, QuorumReadsSeeAckedWrites);
//   - one strong dot, one value: across every replica's stored objects, the Paxos state
//     each key's next round carries forward, what replicas were sent and what every
//     read returned (DotsNameOneValue::CheckWithAcceptors);
//   - no acknowledged eventual write lost: each is in the merge of its key's final
//     replicas, none of them a departed node, or superseded by a write that saw it.
//
// Seeds: ITSUKA_SIM_SEED=N replays one seed of every test here; ITSUKA_SIM_STALE_SEEDS=K
// runs K seeds of each (thousands outside CI: ITSUKA_SIM_STALE_SEEDS=5000). CI runs
// the defaults below (fewer under AddressSanitizer, whose build also runs sim_tests).
// ITSUKA_SIM_TRACE=1 prints a failing seed's schedule.
//
// On the code before ownership fencing (branch `fence`) and the restart gate (branch
// `gate`) a restarted removed node still coordinates with its old ring and the old
// replicas accept its writes: RestartAfterRemoval (88 of seeds 1..300), IssueSchedule
// and Issue16Seeds fail there (they were DISABLED_ until both were merged here). Of
// seeds 1..1000 on that code, KillAtEveryStepOfAMove also failed on 100, 181, 301,
// 332, 396, 444, 540, 693, 725, 789, 981, 989 (a member killed after the transfers,
// before the switch, restarted and reading R=2 from its old read ring) and
// RestartAfterOthersMoved on 168, 220, 622 (R+W>N at a ring switch); their CI seeds
// (1..96) passed there too.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "checkers.h"
#include "seeds.h"
#include "workloads.h"

namespace itsuka::core::sim {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

constexpr const char* kSeedsVar = "ITSUKA_SIM_STALE_SEEDS";
constexpr int kRegisterKeys = 3, kEventualKeys = 3;
constexpr int kMaxLoadRegisterOps = 24;  // per key, so the linearizability search stays small

ClusterOptions StaleOptions() {
  ClusterOptions o;
  o.node.n = 3;
  o.node.request_timeout_ms = 1000;
  o.node.record_writes = true;
  o.request_ids_per_boot = true;
  o.network.max_delay_ms = 20;
  o.gossip = true;
  o.gossip_ms = NodeConfig().gossip_interval_ms;  // the daemon's (1 s)
  return o;
}

std::vector<std::string> RegisterKeys() {
  std::vector<std::string> k;
  for (int i = 0; i < kRegisterKeys; ++i) k.push_back("k" + std::to_string(i));
  return k;
}

// Traffic through every up node: CONSISTENT reads and writes of k*, eventual W=2 writes
// and R=2 reads of z*.
class Traffic {
 public:
  Traffic(Cluster& c, EventualClient& ev, RegisterClient& reg)
      : c_(c), rng_(c.rng()), ev_(ev), reg_(reg) {}

  std::vector<std::string> Up() const {
    std::vector<std::string> out;
    for (const std::string& id : c_.ids()) {
      if (c_.Up(id)) out.push_back(id);
    }
    return out;
  }

  // One random operation through `via`; `force_register` ignores the per-key budget.
  void One(const std::string& via, bool force_register = false) {
    if (rng_() % 2 == 0) {
      const std::string k = "k" + std::to_string(rng_() % kRegisterKeys);
      if (!force_register && register_ops_[k] >= kMaxLoadRegisterOps) return;
      ++register_ops_[k];
      reg_.ReadOrWrite(via, k, rng_() % 2 ? "w" + std::to_string(next_value_++) : "");
      return;
    }
    const std::string z = "z" + std::to_string(rng_() % kEventualKeys);
    if (rng_() % 2 == 0) {
      ev_.Get(via, z, 2);
      return;
    }
    std::optional<VClock> ctx;
    auto it = ev_.last_read_ctx().find(z);
    if (rng_() % 3 == 0 && it != ev_.last_read_ctx().end()) ctx = it->second;
    ev_.Put(via, z, "e" + std::to_string(next_value_++), ctx, 2);
  }

  // An operation every 40 ms on average through a random up node (half of them through
  // `favour`, if it is up) while `ms` pass.
  void Load(int64_t ms, const std::string& favour = "") {
    for (int64_t t = 0; t < ms; t += 20) {
      const std::vector<std::string> up = Up();
      if (!up.empty() && rng_() % 2 == 0) {
        const bool fav = !favour.empty() && c_.Up(favour) && rng_() % 2 == 0;
        One(fav ? favour : up[rng_() % up.size()]);
      }
      c_.Run(20);
    }
  }

  // A burst through `via`: a CONSISTENT read and write of every k*, an eventual write and
  // read of every z*.
  void Burst(const std::string& via) {
    for (int i = 0; i < kRegisterKeys; ++i) {
      const std::string k = "k" + std::to_string(i);
      reg_.ReadOrWrite(via, k, "");
      reg_.ReadOrWrite(via, k, "b" + std::to_string(next_value_++));
    }
    for (int i = 0; i < kEventualKeys; ++i) {
      const std::string z = "z" + std::to_string(i);
      ev_.Put(via, z, "b" + std::to_string(next_value_++), std::nullopt, 2);
      ev_.Get(via, z, 2);
    }
  }

  // Loads in 500 ms steps until the membership settled, at most `rounds` steps.
  bool Settle(int rounds = 120) {
    for (int i = 0; i < rounds && !c_.Settled(); ++i) Load(500);
    return c_.Settled();
  }

 private:
  Cluster& c_;
  std::mt19937_64& rng_;
  EventualClient& ev_;
  RegisterClient& reg_;
  std::map<std::string, int> register_ops_;
  int next_value_ = 0;
};

// Forms a cluster n0..n<size-1>; false if it did not form.
bool Form(Cluster& c, int size) {
  std::vector<std::string> all;
  for (int i = 0; i < size; ++i) all.push_back("n" + std::to_string(i));
  for (const std::string& id : all) c.Start(id, all);
  for (int i = 0; i < 40 && !(c.Settled() && c.LiveMembers().size() == all.size()); ++i) c.Run(500);
  return c.Settled() && c.LiveMembers().size() == all.size();
}

struct Figures {
  int register_ok = 0, quorum_checked = 0, acked = 0;
  std::map<std::string, int> cases;  // what the seeds did
};

// After the run: heal, settle, read repair and final reads, then every checker.
std::string FinishAndCheck(Cluster& c, Traffic& traffic, EventualClient& ev, RegisterClient& reg,
                           DotsNameOneValue& dots, const std::set<std::string>& gone,
                           const std::string& favour, Figures* figures) {
  c.Partition({});
  traffic.Load(2000, favour);
  if (!traffic.Settle()) return "membership did not settle after the heal";
  const std::vector<std::string> live = c.LiveMembers();
  if (live.empty()) return "no live member at the end";
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kEventualKeys; ++i) {
      for (const std::string& id : live) ev.Get(id, "z" + std::to_string(i), 2);
    }
    c.Run(2000);
  }
  const std::vector<std::string> keys = RegisterKeys();
  for (const std::string& k : keys) reg.ReadOrWrite(live[c.rng()() % live.size()], k, "");
  c.Run(3000);
  std::string failure = dots.CheckWithAcceptors(c, reg);
  int register_ok = 0, quorum_checked = 0;
  if (failure.empty()) failure = RegistersLinearizable(reg, keys, &register_ok);
  if (failure.empty()) failure = QuorumReadsSeeAckedWrites(ev, 3, &quorum_checked);
  if (failure.empty()) failure = AckedWritesOnFinalReplicasMerge(c, ev, live[0], gone);
  if (failure.empty() && figures != nullptr) {
    figures->register_ok += register_ok;
    figures->quorum_checked += quorum_checked;
    figures->acked += static_cast<int>(ev.acked().size());
  }
  if (!failure.empty() && std::getenv("ITSUKA_SIM_TRACE")) std::fprintf(stderr, "%s\n", c.trace().c_str());
  return failure;
}

// ---- StaleView ---------------------------------------------------------------------------

// How the restarted node meets the cluster.
// kWithUninformedPartner: the partner is cut off before the change, so it still holds
// the restarted node's old view (and ring): together they look like a majority of it.
enum class Restart { kConnected, kWithStalePartner, kWithPartner, kWithUninformedPartner };
const char* RestartName(Restart r) {
  switch (r) {
    case Restart::kConnected: return "connected";
    case Restart::kWithStalePartner: return "with-stale-partner";
    case Restart::kWithPartner: return "with-partner";
    case Restart::kWithUninformedPartner: return "with-uninformed-partner";
  }
  return "?";
}

// kRemoved: the first change while the node is down removes it (the issue's case);
// kOthersMoved: only joins and decommissions of other members.
enum class StaleCase { kRemoved, kOthersMoved };

// One membership change while `victim` is down, entered on a member other than
// `partner` (which may be cut off): 0 removes the victim, 1 joins a new node, 2
// decommissions another member. Returns what it did (for the figures).
std::string ChangeWhileDown(Cluster& c, Traffic& traffic, const std::string& victim,
                            const std::string& partner, int kind, int* next_node,
                            std::set<std::string>* gone) {
  auto& rng = c.rng();
  std::vector<std::string> live;
  for (const std::string& id : c.LiveMembers()) {
    if (id != partner) live.push_back(id);
  }
  const std::string via = live[rng() % live.size()];
  if (kind == 0 && !gone->count(victim)) {
    if (c.Decommission(via, victim)) gone->insert(victim);
    return "remove-it";
  }
  if (kind == 2 && live.size() > 3) {
    std::string other = live[rng() % live.size()];
    if (c.Decommission(via, other)) gone->insert(other);
    traffic.Load(300 + static_cast<int64_t>(rng() % 700));
    return "decommission-other";
  }
  const std::string id = "n" + std::to_string((*next_node)++);
  c.Start(id, {live[rng() % live.size()]});
  if (!partner.empty()) c.Partition({partner, victim});  // the new node is on the majority's side
  return "join";
}

// One or two changes while `victim` is down; what they were.
std::string ChangesWhileDown(Cluster& c, Traffic& traffic, StaleCase which, const std::string& victim,
                             const std::string& partner, int* next_node, std::set<std::string>* gone) {
  auto& rng = c.rng();
  const int changes = rng() % 3 == 0 ? 2 : 1;
  std::string what;
  for (int i = 0; i < changes; ++i) {
    int kind = static_cast<int>(rng() % 3);
    if (which == StaleCase::kRemoved && i == 0) kind = 0;
    if (which == StaleCase::kOthersMoved && kind == 0) kind = 1 + static_cast<int>(rng() % 2);
    what += ChangeWhileDown(c, traffic, victim, partner, kind, next_node, gone) + ",";
    if (!partner.empty()) {  // the cut-off partner never hears of it: no settling
      traffic.Load(8000);
      continue;
    }
    // A move cannot finish while a member is down (transfers wait until every member
    // knows the new ring): the restart then meets a move in flight, 10 s in.
    if (!traffic.Settle(20)) {
      what += "unsettled,";
      break;
    }
  }
  return what;
}

SeedOutcome RunStaleSeed(uint64_t seed, StaleCase which, Figures* figures) {
  Cluster c(seed, StaleOptions());
  EventualClient ev(&c);
  RegisterClient reg(&c, /*smart_clients=*/false);
  DotsNameOneValue dots(&c);
  Traffic traffic(c, ev, reg);
  auto& rng = c.rng();
  SeedOutcome out;
  const int size = 4 + static_cast<int>(seed % 2);
  if (!Form(c, size)) {
    out.failure = "the cluster did not form";
    return out;
  }
  traffic.Load(1000);
  std::vector<std::string> live = c.LiveMembers();
  const std::string victim = live[rng() % live.size()];
  c.Crash(victim);
  traffic.Load(300 + static_cast<int64_t>(rng() % 700));
  std::set<std::string> gone;
  int next_node = size;
  const Restart how = static_cast<Restart>(rng() % 4);
  std::string partner;
  if (how == Restart::kWithUninformedPartner) {
    live = c.LiveMembers();
    partner = live[rng() % live.size()];
    c.Partition({partner, victim});
  }
  std::string what = ChangesWhileDown(c, traffic, which, victim, partner, &next_node, &gone);
  live = c.LiveMembers();
  if (partner.empty()) partner = live[rng() % live.size()];
  if (how == Restart::kWithStalePartner) {
    c.Partition({partner, victim});  // the partner misses what the majority writes now
    traffic.Load(1000 + static_cast<int64_t>(rng() % 1000));
  } else if (how == Restart::kWithPartner) {
    c.Partition({partner, victim});
  }
  c.Restart(victim);  // from its saved view: stale
  traffic.Burst(victim);
  traffic.Load(1000 + static_cast<int64_t>(rng() % 3000), victim);
  what += RestartName(how);
  if (figures != nullptr) ++figures->cases[what];
  out.failure = FinishAndCheck(c, traffic, ev, reg, dots, gone, victim, figures);
  if (std::getenv("ITSUKA_SIM_VERBOSE")) {
    std::fprintf(stderr, "seed %llu: victim %s, %s, partner %s: %s\n",
                 static_cast<unsigned long long>(seed), victim.c_str(), what.c_str(), partner.c_str(),
                 out.failure.empty() ? "ok" : out.failure.c_str());
  }
  if (!out.failure.empty()) {
    out.failure = "[victim " + victim + ", " + what + ", partner " + partner + "] " + out.failure;
  }
  out.digest = Hash64(c.trace());
  return out;
}

// ---- StaleTogether -----------------------------------------------------------------------

// Two nodes of three are killed (one at a time, under traffic) and decommissioned while
// down through the third, which settles without them (a minority of the old view made
// the change, so a majority of that view need not know of it). (In a bigger cluster a
// majority removed while down holds some partition alone: the leave cannot finish.) The
// survivors are then cut off from the removed nodes, write on, and the removed nodes
// are restarted together from their saved views: a majority of that stale view, all
// gated. Traffic goes through them (a burst, then favoured); then the heal and the
// checks. Before gated peers stopped opening each other's gate on their own (DESIGN
// 4.3.1) they served the old ring between themselves.
SeedOutcome RunStaleTogetherSeed(uint64_t seed, Figures* figures) {
  Cluster c(seed, StaleOptions());
  EventualClient ev(&c);
  RegisterClient reg(&c, /*smart_clients=*/false);
  DotsNameOneValue dots(&c);
  Traffic traffic(c, ev, reg);
  auto& rng = c.rng();
  SeedOutcome out;
  const int size = 3;
  if (!Form(c, size)) {
    out.failure = "the cluster did not form";
    return out;
  }
  traffic.Load(1000);
  std::vector<std::string> live = c.LiveMembers();
  std::set<std::string> stale;
  while (stale.size() < live.size() / 2 + 1) {
    const std::string victim = live[rng() % live.size()];
    if (!stale.insert(victim).second) continue;
    c.Crash(victim);
    traffic.Load(300 + static_cast<int64_t>(rng() % 700));
  }
  std::vector<std::string> survivors;
  for (const std::string& id : live) {
    if (!stale.count(id)) survivors.push_back(id);
  }
  std::set<std::string> gone;
  for (const std::string& id : stale) {
    if (c.Decommission(survivors[rng() % survivors.size()], id)) gone.insert(id);
  }
  if (!traffic.Settle(60) || gone != stale) {
    out.failure = "the decommission of the stopped nodes did not finish";
    return out;
  }
  c.Partition(stale);
  traffic.Load(1000 + static_cast<int64_t>(rng() % 1000));  // writes the stale side never sees
  for (const std::string& id : stale) c.Restart(id);  // together, from their saved views
  const std::string via = *std::next(stale.begin(), static_cast<long>(rng() % stale.size()));
  traffic.Load(1000 + static_cast<int64_t>(rng() % 1000));  // let their gossip go round
  traffic.Burst(via);
  traffic.Load(2000 + static_cast<int64_t>(rng() % 2000), via);
  const std::string what = std::to_string(stale.size()) + " of " + std::to_string(size) + " removed";
  if (figures != nullptr) ++figures->cases[what];
  out.failure = FinishAndCheck(c, traffic, ev, reg, dots, gone, via, figures);
  if (!out.failure.empty()) out.failure = "[" + what + ", via " + via + "] " + out.failure;
  out.digest = Hash64(c.trace());
  return out;
}

// ---- MoveStep ----------------------------------------------------------------------------

enum class Step { kBeforeVisible, kDuringTransfer, kTransferredBeforeSwitch, kAfterSwitch };
const char* StepName(Step s) {
  switch (s) {
    case Step::kBeforeVisible: return "before-visible";
    case Step::kDuringTransfer: return "during-transfer";
    case Step::kTransferredBeforeSwitch: return "transferred-before-switch";
    case Step::kAfterSwitch: return "after-switch";
  }
  return "?";
}

// Whether every up member's view shows the change (the mover joining/leaving or past it).
bool ChangeVisible(Cluster& c, const std::string& mover, bool join) {
  for (const std::string& id : c.ids()) {
    if (!c.Up(id)) continue;
    const View& v = c.ViewOf(id);
    auto it = v.find(mover);
    if (it == v.end()) return false;
    if (!join && it->second.status == MemberStatus::kUp) return false;
  }
  return true;
}

bool AnyTransferPending(Cluster& c) {
  for (const std::string& id : c.ids()) {
    if (c.Up(id) && c.core(id).TransfersPending() > 0) return true;
  }
  return false;
}

// Runs the move (under traffic) until `step` holds, then true; false if the move ended
// first (the seed missed its step).
bool RunToStep(Cluster& c, Traffic& traffic, Step step, const std::string& mover, bool join) {
  if (step == Step::kBeforeVisible) {
    // A few ms in, while some member has not heard of the change yet.
    for (int i = static_cast<int>(c.rng()() % 4); i > 0 && !ChangeVisible(c, mover, join); --i) c.Run(5);
    return !ChangeVisible(c, mover, join);
  }
  bool saw_transfer = false;
  for (int i = 0; i < 3000; ++i) {  // 60 s at most
    const bool pending = AnyTransferPending(c);
    saw_transfer = saw_transfer || pending;
    const bool settled = c.Settled();
    if (step == Step::kDuringTransfer && pending) return true;
    if (step == Step::kTransferredBeforeSwitch && saw_transfer && !pending && !settled) return true;
    if (step == Step::kAfterSwitch && saw_transfer && settled) return true;
    if (settled && (saw_transfer || i > 250)) return false;
    traffic.Load(20);
  }
  return false;
}

SeedOutcome RunMoveSeed(uint64_t seed, Figures* figures, const ClusterOptions& options) {
  Cluster c(seed, options);
  EventualClient ev(&c);
  RegisterClient reg(&c, /*smart_clients=*/false);
  DotsNameOneValue dots(&c);
  Traffic traffic(c, ev, reg);
  auto& rng = c.rng();
  SeedOutcome out;
  const int size = 3 + static_cast<int>((seed >> 3) % 2);
  if (!Form(c, size)) {
    out.failure = "the cluster did not form";
    return out;
  }
  traffic.Load(800);
  // Every 8 consecutive seeds cover each (join | decommission) x step.
  const bool join = seed % 2 == 0 || size == 3;
  const Step step = static_cast<Step>((seed >> 1) % 4);
  std::set<std::string> gone;
  std::vector<std::string> live = c.LiveMembers();
  std::string mover;
  if (join) {
    mover = "n" + std::to_string(size);
    c.Start(mover, {live[rng() % live.size()]});
  } else {
    mover = live[rng() % live.size()];
    if (!c.Decommission(live[rng() % live.size()], mover)) {
      out.failure = "the decommission of " + mover + " was refused";
      return out;
    }
    gone.insert(mover);
  }
  const bool hit = RunToStep(c, traffic, step, mover, join);
  // The victim: the moving node, or another member.
  std::string victim = mover;
  if (rng() % 2) {
    live = traffic.Up();
    std::vector<std::string> others;
    for (const std::string& id : live) {
      if (id != mover) others.push_back(id);
    }
    victim = others[rng() % others.size()];
  }
  c.Crash(victim);
  traffic.Load(300 + static_cast<int64_t>(rng() % 1700));
  c.Restart(victim);  // from the view it had saved at that step
  traffic.Burst(victim);
  traffic.Load(1000 + static_cast<int64_t>(rng() % 2000), victim);
  const std::string what = std::string(join ? "join," : "decommission,") + StepName(step) +
                           (hit ? "" : "(missed)") + (victim == mover ? ",kill-mover" : ",kill-other");
  if (figures != nullptr) ++figures->cases[what];
  out.failure = FinishAndCheck(c, traffic, ev, reg, dots, gone, victim, figures);
  if (!out.failure.empty()) out.failure = "[mover " + mover + ", victim " + victim + ", " + what + "] " + out.failure;
  out.digest = Hash64(c.trace());
  return out;
}

void Report(const char* name, size_t seeds, const Figures& f) {
  std::printf("%s: %zu seeds, %d CONSISTENT ops ok and checked, %d R+W>N observations, %d acked "
              "eventual writes\n",
              name, seeds, f.register_ok, f.quorum_checked, f.acked);
  for (const auto& [what, n] : f.cases) std::printf("  %4d  %s\n", n, what.c_str());
}

void RunMany(const char* name, int ci_seeds, uint64_t first,
             SeedOutcome (*run)(uint64_t, Figures*)) {
  const std::vector<uint64_t> seeds = Seeds(kSanitized ? ci_seeds / 4 : ci_seeds, first, kSeedsVar);
  Figures f;
  RunSeedsTwice(seeds, [&](uint64_t seed, bool count) { return run(seed, count ? &f : nullptr); });
  if (::testing::Test::HasFatalFailure()) return;
  EXPECT_GT(f.register_ok, static_cast<int>(seeds.size()) * 5);
  EXPECT_GT(f.quorum_checked, static_cast<int>(seeds.size()) * 5);
  Report(name, seeds.size(), f);
}

SeedOutcome RunMoveStep(uint64_t seed, Figures* f) { return RunMoveSeed(seed, f, StaleOptions()); }
SeedOutcome RunRemoved(uint64_t seed, Figures* f) { return RunStaleSeed(seed, StaleCase::kRemoved, f); }
SeedOutcome RunOthersMoved(uint64_t seed, Figures* f) {
  return RunStaleSeed(seed, StaleCase::kOthersMoved, f);
}

// kill -9 at every step of a join and a decommission, the victim restarted from the
// view it saved at that step.
TEST(StaleViewSimulation, KillAtEveryStepOfAMove) { RunMany("move step", 96, 1, RunMoveStep); }

// A node restarted from its saved view after the others joined or decommissioned
// members while it was down.
TEST(StaleViewSimulation, RestartAfterOthersMoved) {
  RunMany("others moved", 96, 1, RunOthersMoved);
}

// Two of three nodes removed while down and restarted together, cut off from the
// survivor that removed them: the gated nodes hear each other (a majority of their
// stale view) but none serves, so none opens; once healed they learn they are left.
// On main's rule before this (a majority heard opens, gated or not) every seed of 1..32
// fails: the two restarted nodes form CONSISTENT majorities of the old ring between
// themselves, so one strong dot names two values (seed 1: k2's ~strong:5 names both
// 'w46', chosen by the survivor, and 'b65', through n2) or a key's CONSISTENT history
// is not linearizable (seeds 13, 19, 25). Replay:
//   ITSUKA_SIM_SEED=1 build/bin/sim_tests --gtest_filter='StaleViewSimulation.StaleNodesRestartedTogether'
TEST(StaleViewSimulation, StaleNodesRestartedTogether) {
  // One survivor takes no W=2 write, so few R+W>N observations: RunMany's floor on
  // them does not apply; CONSISTENT operations (a majority of one) go on throughout.
  const std::vector<uint64_t> seeds = Seeds(kSanitized ? 8 : 32, 1, kSeedsVar);
  Figures f;
  RunSeedsTwice(seeds, [&](uint64_t seed, bool count) {
    return RunStaleTogetherSeed(seed, count ? &f : nullptr);
  });
  if (::testing::Test::HasFatalFailure()) return;
  EXPECT_GT(f.register_ok, static_cast<int>(seeds.size()) * 5);
  Report("stale together", seeds.size(), f);
}

// The checkers' self-test: with coordinators that acknowledge a write before W
// replicas answered (NodeOptions::unsafe_ack_before_quorum), the move-step runs must
// report an R+W>N miss or a lost acknowledged write for some of these seeds, over a
// network where 1 in 5 messages is 300 ms late; the correct code passes them.
TEST(StaleViewSimulation, AckBeforeQuorumIsCaught) {
  ClusterOptions broken = StaleOptions();
  broken.node.unsafe_ack_before_quorum = true;
  broken.network.long_delay_one_in = 5;  // replica writes that land late: the window it opens
  broken.network.long_delay_ms = 300;
  ClusterOptions good = broken;
  good.node.unsafe_ack_before_quorum = false;
  int caught = 0;
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    ASSERT_EQ(RunMoveSeed(seed, nullptr, good).failure, "") << "seed " << seed << ", correct code";
    const std::string f = RunMoveSeed(seed, nullptr, broken).failure;
    if (std::getenv("ITSUKA_SIM_VERBOSE")) std::fprintf(stderr, "seed %d: %s\n", static_cast<int>(seed), f.c_str());
    caught += f.find("R+W>N") != std::string::npos || f.find("acknowledged write lost") != std::string::npos;
  }
  std::printf("ack before quorum: caught by %d of 24 seeds\n", caught);
  EXPECT_GT(caught, 0) << "no seed caught writes acknowledged before W replicas answered";
}

// The correct code over AckBeforeQuorumIsCaught's network (1 in 5 messages 300 ms
// late) at every step of a move, on more seeds than that self-test runs:
// ITSUKA_SIM_LATE_SEEDS=K runs seeds 1..K (the default, 24, are the self-test's).
TEST(StaleViewSimulation, KillAtEveryStepOfAMoveWithLateMessages) {
  ClusterOptions late = StaleOptions();
  late.network.long_delay_one_in = 5;
  late.network.long_delay_ms = 300;
  const std::vector<uint64_t> seeds = Seeds(kSanitized ? 6 : 24, 1, "ITSUKA_SIM_LATE_SEEDS");
  Figures f;
  int failed = 0;
  for (uint64_t seed : seeds) {
    const std::string failure = RunMoveSeed(seed, &f, late).failure;
    if (!failure.empty()) {
      ++failed;
      ADD_FAILURE() << "seed " << seed << " (replay: ITSUKA_SIM_SEED=" << seed << "): " << failure;
    }
  }
  EXPECT_EQ(failed, 0);
  Report("move step, late messages", seeds.size(), f);
}

// ISSUE 16: a node removed (decommissioned) while it was down and restarted from its
// stale saved view. Passes with branches `fence` (ring fencing on the peer path) and
// `gate` (a restarted node neither coordinates nor votes before it gossiped with a
// majority of its view) merged; DISABLED_ before them. On the code before them
// a replica accepts a ReplicaWrite from a left member (core/peer_checks.cc allows it
// for hint replay), so the restarted node acknowledges W=2 writes stored on itself and
// one old replica, and a later R=2 read through a current member misses them (R+W>N):
// 88 of seeds 1..300 fail so. Replay one:
//   ITSUKA_SIM_SEED=6 build/bin/sim_tests --gtest_filter='StaleViewSimulation.RestartAfterRemoval'
TEST(StaleViewSimulation, RestartAfterRemoval) { RunMany("removed", 64, 1, RunRemoved); }

// The issue's own schedule, step by step, on 4 nodes (n0..n3 are its node1..node4):
// SET k v0 CONSISTENT; kill -9 n2; decommission n2 until left; cut n0 off from n1 and
// n3; SET k v1 CONSISTENT and SET z z1 W=2 through n1; restart n2 from its data and
// saved view beside n0 only; through n2: GET k CONSISTENT, SET k v2 CONSISTENT, SET z
// z2 W=2, GET z R=2; through n1: GET z R=2, GET k CONSISTENT; heal; read everything
// back through n1 and n3. Returns the first violation (empty: none).
std::string IssueSchedule() {
  Cluster c(16, StaleOptions());
  EventualClient ev(&c);
  RegisterClient reg(&c, /*smart_clients=*/false);
  DotsNameOneValue dots(&c);
  if (!Form(c, 4)) return "the cluster did not form";
  reg.ReadOrWrite("n1", "k", "v0");
  ev.Put("n1", "z", "z0", std::nullopt, 2);
  c.Run(1000);
  c.Crash("n2");
  if (!c.Decommission("n0", "n2")) return "the decommission was refused";
  for (int i = 0; i < 120 && !(c.Settled() && c.ViewOf("n0").at("n2").status == MemberStatus::kLeft); ++i) {
    c.Run(500);
  }
  if (c.ViewOf("n0").at("n2").status != MemberStatus::kLeft) return "n2 never became left";
  c.Partition({"n0", "n2"});
  reg.ReadOrWrite("n1", "k", "v1");
  ev.Put("n1", "z", "z1", std::nullopt, 2);
  c.Run(1000);
  c.Restart("n2");
  reg.ReadOrWrite("n2", "k", "");
  c.Run(200);
  reg.ReadOrWrite("n2", "k", "v2");
  ev.Put("n2", "z", "z2", std::nullopt, 2);
  c.Run(200);
  ev.Get("n2", "z", 2);
  ev.Get("n1", "z", 2);
  reg.ReadOrWrite("n1", "k", "");
  c.Run(1000);
  c.Partition({});
  c.Run(3000);
  for (const char* id : {"n1", "n3"}) {
    ev.Get(id, "z", 2);
    reg.ReadOrWrite(id, "k", "");
    c.Run(1000);
  }
  c.Run(2000);
  std::string failure = dots.CheckWithAcceptors(c, reg);
  int ok = 0, checked = 0;
  if (failure.empty()) failure = RegistersLinearizable(reg, {"k"}, &ok);
  if (failure.empty()) failure = QuorumReadsSeeAckedWrites(ev, 3, &checked);
  if (failure.empty()) failure = AckedWritesOnFinalReplicasMerge(c, ev, "n1", {"n2"});
  std::printf("issue schedule: %d CONSISTENT ops ok, %d R+W>N observations: %s\n", ok, checked,
              failure.empty() ? "ok" : failure.c_str());
  return failure;
}

// ISSUE 16: on the code before `fence` and `gate` the issue's schedule fails (the W=2
// write acknowledged through the restarted removed node is missed by n1's R=2 read).
TEST(StaleViewSimulation, IssueSchedule) { EXPECT_EQ(IssueSchedule(), ""); }

// The named seeds that found issue-16 bugs on the code before `fence` and `gate`; each
// passes with them.
//   RestartAfterRemoval 6: n0 killed, decommissioned, its partner n3 cut off from the
//     majority, more writes, n0 restarted beside n3 only (the issue's schedule): a W=2
//     write acknowledged through n0 is missed by a later R=2 read through n1.
//   RestartAfterRemoval 1, 11, 144 (144: no partition at the restart): the same miss.
//   KillAtEveryStepOfAMove 100 (and 181): n2 killed after the joiner's transfers finished, before
//     the switch; restarted from that view, it reads R=2 from the old read ring while
//     the joiner, switched, writes W=2 to the new preference list only: missed.
//   RestartAfterOthersMoved 168 (and 220): the same switch gap without a kill at that step: n1
//     switched to the new ring and wrote W=2 to its new preference list; 6 ms later n0
//     (restarted from a stale view earlier, not yet switched) read R=2 from the old one.
//     Gossip lag at the switch alone: likely needs more than fencing (see the report).
TEST(StaleViewSimulation, Issue16Seeds) {
  for (uint64_t seed : {1, 6, 11, 144}) {
    EXPECT_EQ(RunRemoved(seed, nullptr).failure, "") << "RestartAfterRemoval seed " << seed;
  }
  for (uint64_t seed : {100, 181}) {
    EXPECT_EQ(RunMoveStep(seed, nullptr).failure, "") << "KillAtEveryStepOfAMove seed " << seed;
  }
  for (uint64_t seed : {168, 220}) {
    EXPECT_EQ(RunOthersMoved(seed, nullptr).failure, "") << "RestartAfterOthersMoved seed " << seed;
  }
}

}  // namespace
}  // namespace itsuka::core::sim
