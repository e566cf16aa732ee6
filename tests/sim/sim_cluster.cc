#include "sim_cluster.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "common/hash.h"

namespace itsuka::core::sim {

Cluster::Cluster(uint64_t seed, ClusterOptions options, int static_nodes)
    : options_(std::move(options)), rng_(seed), net_(options_.network, &rng_), now_(options_.start_ms) {
  for (int i = 0; i < static_nodes; ++i) static_ids_.push_back("n" + std::to_string(i));
  for (const std::string& id : static_ids_) {
    Create(id);
    Boot(id);
  }
}

Cluster::~Cluster() = default;

Cluster::SimNode& Cluster::Create(const std::string& id) {
  SimNode& n = nodes_[id];
  n.store = std::make_unique<SimStore>(options_.partitions, options_.merkle);
  n.hint_engine = std::make_unique<storage::MemEngine>();
  return n;
}

void Cluster::Boot(const std::string& id) {
  SimNode& n = nodes_.at(id);
  if (!options_.gossip && n.persisted.empty()) n.persisted = StaticView();
  BootNode(id, n);
}

NodeOptions Cluster::CoreOptions() {
  NodeOptions o = options_.node;
  if (options_.request_ids_per_boot) o.first_request_id = (++boots_) << 32;
  return o;
}

void Cluster::AttachHints(SimNode& n, NodeCore& core) {
  n.last_stats = HandoffStats{};
  if (!options_.hints) return;
  n.hints = std::make_unique<server::HintTable>(*n.hint_engine, options_.hint_limits,
                                                [this] { return now_; });
  EXPECT_TRUE(n.hints->Load().ok());
  core.SetHintStore(n.hints.get(), options_.handoff);
}

MemberState Cluster::NewIncarnation(const std::string& id, const SimNode& n) const {
  MemberState self;
  self.id = id;
  self.incarnation = n.persisted.count(id) ? n.persisted.at(id).incarnation + 1 : 1;
  self.client_addr = id + ":7000";
  self.peer_addr = id + ":17000";
  return self;
}

// Every static node up and done transferring: what a settled cluster's view says.
View Cluster::StaticView() const {
  View v;
  for (const std::string& id : static_ids_) {
    MemberState& m = v[id];
    m.id = id;
    m.incarnation = 1;
    m.client_addr = id + ":7000";
    m.peer_addr = id + ":17000";
    m.version = 1;
    m.status = MemberStatus::kUp;
  }
  const uint64_t fp = WriteFingerprint(v);
  for (auto& [id, m] : v) m.synced = m.seen = fp;
  return v;
}

// A core::Node with its persisted view (a new incarnation).
void Cluster::BootNode(const std::string& id, SimNode& n) {
  Gossiper gossiper(NewIncarnation(id, n), n.seeds);
  if (!n.persisted.empty()) gossiper.Restore(n.persisted);
  NodeConfig config;
  config.core = CoreOptions();
  config.partitions = options_.partitions;
  config.core_tick_ms = options_.tick_ms;
  // A static cluster's views never change: no gossip rounds.
  config.gossip_interval_ms = options_.gossip ? options_.gossip_ms : (int64_t{1} << 50);
  config.start_ms = now_;
  config.seed = rng_();
  config.unsafe_synced_before_transfer = options_.unsafe_synced_before_transfer;
  // As the daemon: a node restarted with its data is gated until it heard from a
  // majority (core/node.h). The static view without gossip is no saved view.
  config.from_saved_view = options_.gossip && !n.persisted.empty();
  config.repair = options_.repair;
  config.repair_limits = options_.repair_limits;
  config.repair_min_grace_ms = 0;  // the runs' own grace decides (0 in the repair sim)
  n.node = std::make_unique<Node>(std::move(gossiper), *n.store, config);
  n.node->StartTicks(now_);
  AttachHints(n, n.node->core());
  n.up = true;
  if (!options_.gossip) {  // the view is all there is to start from
    n.node->Start();
    Drain(id);
  }
}

void Cluster::Start(const std::string& id, std::vector<std::string> seeds) {
  auto it = nodes_.find(id);
  if (it != nodes_.end() && it->second.up) return;
  if (it == nodes_.end()) Create(id).seeds = std::move(seeds);
  Boot(id);
  trace_ += "start " + id + ";";
  UpdateReachability();
  nodes_.at(id).node->Start();
  Drain(id);
}

void Cluster::Crash(const std::string& id) {
  SimNode& n = nodes_.at(id);
  if (!n.up) return;
  n.up = false;
  n.store->Crash();
  n.hints.reset();  // staged hints are lost; committed ones stay in hint_engine
  n.node.reset();
  for (Watcher* w : watchers_) w->OnCrash(id);  // their clients see a closed connection
  trace_ += "crash " + id + ";";
  UpdateReachability();
}

void Cluster::Restart(const std::string& id) {
  if (nodes_.at(id).up) return;
  if (options_.gossip) {
    Start(id);
    return;
  }
  Boot(id);
  trace_ += "restart " + id + ";";
  UpdateReachability();
}

void Cluster::Partition(const std::set<std::string>& side) {
  net_.Partition(ids(), side);
  trace_ += side.empty() ? "heal;" : "partition;";
  UpdateReachability();
}

void Cluster::Heal() {
  net_.Heal();
  for (const std::string& id : ids()) Restart(id);
  UpdateReachability();
}

bool Cluster::Decommission(const std::string& via, const std::string& target) {
  SimNode& n = nodes_.at(via);
  if (!n.up) return false;
  const bool ok = n.node->Leave(target);
  if (ok) trace_ += "leave " + target + " via " + via + ";";
  Drain(via);
  return ok;
}

Status Cluster::StartRepair(const std::string& id, RepairProgress progress) {
  Status st = nodes_.at(id).node->StartRepair(std::move(progress), now_);
  Drain(id);
  return st;
}

const RepairDriver& Cluster::repair(const std::string& id) const {
  return nodes_.at(id).node->repair();
}

bool Cluster::Up(const std::string& id) const {
  auto it = nodes_.find(id);
  return it != nodes_.end() && it->second.up;
}

Node& Cluster::node(const std::string& id) { return *nodes_.at(id).node; }

const NodeCore& Cluster::core(const std::string& id) const { return nodes_.at(id).node->core(); }

// ---- the shell's part: what server::Node does around core::Node ----------------------------

// A core::Node's effects: those at once (gossip) go out now, the view is persisted, and
// the gated part is returned for Drain.
Outbox Cluster::TakeOutbox(const std::string& id, SimNode& n) {
  NodeOutbox all = n.node->TakeOutbox(now_, now_);
  if (std::getenv("ITSUKA_SIM_DEBUG_VIEWS")) {
    for (const LogLine& l : all.logs) {
      std::fprintf(stderr, "t=%ld %s: %s\n", static_cast<long>(now_), id.c_str(), l.text.c_str());
    }
  }
  for (auto& [to, msg] : all.direct) Send(id, to, std::move(msg));
  if (all.view_changed) {
    n.persisted = n.node->view();
    const uint64_t fp = WriteFingerprint(n.persisted);
    if (std::getenv("ITSUKA_SIM_DEBUG_KEY") && fp != n.debug_fp) DebugRings(id, n, fp);
  }
  Outbox out;
  out.sends = std::move(all.sends);
  out.results = std::move(all.results);
  out.writes = std::move(all.writes);
  return out;
}

// Rounds of commit, then release, while a core::Node has gated work left (a repair
// request to itself waiting for the commit), at most 8 as the daemon runs at once.
void Cluster::Drain(const std::string& id) {
  SimNode& n = nodes_.at(id);
  for (int round = 0; round < 8; ++round) {
    DrainRound(id, n);
    if (!n.up || !n.node->HasOutput()) break;
  }
}

// Commit first, then release the outbox: the order the real shell follows.
void Cluster::DrainRound(const std::string& id, SimNode& n) {
  Outbox out = TakeOutbox(id, n);
  n.store->Commit();
  if (n.hints) CommitHints(n);
  for (const WriteRecord& w : out.writes) {
    for (Watcher* wa : watchers_) wa->OnWrite(w);
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
    for (Watcher* w : watchers_) w->OnSend(id, to, msg);
    Send(id, to, std::move(msg));
  }
  for (const ClientResult& r : out.results) {
    for (Watcher* w : watchers_) w->OnResult(id, r);
  }
}

// The same group commit as the data, before anything is sent.
void Cluster::CommitHints(SimNode& n) {
  WriteBatch batch;
  n.hints->AppendStaged(&batch);
  EXPECT_TRUE(n.hint_engine->Write(batch, false).ok());
  n.hints->Committed(true);
  const HandoffStats& hs = n.node->core().handoff_stats();
  HandoffStats& last = n.last_stats;
  handoff_totals_.written += hs.written - last.written;
  handoff_totals_.replayed += hs.replayed - last.replayed;
  handoff_totals_.refused += hs.refused - last.refused;
  handoff_totals_.dropped += hs.dropped - last.dropped;
  last = hs;
}

void Cluster::Run(int64_t ms) {
  const int64_t until = now_ + ms;
  while (true) {
    const int64_t next_tick = (now_ / options_.tick_ms + 1) * options_.tick_ms;
    const int64_t next_msg = net_.NextAt();
    const int64_t t = std::min(next_tick, next_msg);
    if (t > until) break;
    now_ = t;
    if (next_msg <= next_tick) {
      Deliver(net_.Pop());
    } else {
      Tick();
    }
  }
  now_ = until;
}

// Every node ticks: its own sub-timers run the core, hint replay, gossip and repair.
void Cluster::Tick() {
  for (auto& [id, n] : nodes_) {
    if (!n.up) continue;
    n.node->Tick(now_, now_);
    Drain(id);
  }
}

namespace {
std::string BallotText(const Ballot& b) {
  return b.IsZero() ? "-" : std::to_string(b.counter) + "." + b.node;
}
std::string ObjectText(const Object& o) {
  std::string s = "{";
  for (const Sibling& sib : o.siblings) {
    s += (sib.tombstone ? std::string("~") : sib.value) + "@" + sib.dot.node + ":" +
         std::to_string(sib.dot.counter) + " ";
  }
  return s + "}";
}
// ITSUKA_SIM_DEBUG_KEY=k: the Paxos messages of key k (and every reply to a round of
// it), transfer batches carrying k's object or acceptor state, as sent and delivered.
std::string DebugText(const PeerMessage& msg, const std::string& key, std::set<uint64_t>& rounds) {
  if (const auto* m = std::get_if<PaxosPrepare>(&msg); m && m->key == key) {
    rounds.insert(m->req_id);
    return "prepare r" + std::to_string(m->req_id) + " b" + BallotText(m->ballot);
  }
  if (const auto* m = std::get_if<PaxosAccept>(&msg); m && m->key == key) {
    rounds.insert(m->req_id);
    return "accept r" + std::to_string(m->req_id) + " b" + BallotText(m->ballot) + " " +
           ObjectText(m->object);
  }
  if (const auto* m = std::get_if<PaxosCommit>(&msg); m && m->key == key) {
    return "commit b" + BallotText(m->ballot) + " " + ObjectText(m->object);
  }
  if (const auto* m = std::get_if<TransferRequest>(&msg)) {
    return "transfer-request r" + std::to_string(m->req_id) + " from '" + m->start + "'";
  }
  if (const auto* m = std::get_if<PaxosPromise>(&msg); m && rounds.count(m->req_id)) {
    return "promise r" + std::to_string(m->req_id) + (m->ok ? " ok" : " NO " + m->error) +
           " promised " + BallotText(m->promised) + " accepted " + BallotText(m->accepted) +
           " " + ObjectText(m->value) + " data " + ObjectText(m->data);
  }
  if (const auto* m = std::get_if<PaxosAccepted>(&msg); m && rounds.count(m->req_id)) {
    return "accepted r" + std::to_string(m->req_id) + (m->ok ? " ok" : " NO " + m->error) +
           " promised " + BallotText(m->promised);
  }
  if (const auto* m = std::get_if<TransferBatch>(&msg)) {
    std::string s;
    if (!m->ok) s += " error " + m->error;
    for (const auto& [k, o] : m->objects) {
      if (k == key) s += " object " + ObjectText(o);
    }
    for (const KeyPaxosState& st : m->paxos) {
      if (st.key == key) {
        s += " state promised " + BallotText(st.promised) + " accepted " +
             BallotText(st.accepted) + " " + ObjectText(st.value);
      }
    }
    if (!s.empty()) return "batch r" + std::to_string(m->req_id) + s;
  }
  return "";
}
}  // namespace

void Cluster::DebugMessage(const char* what, const std::string& from, const std::string& to,
                           const PeerMessage& msg) {
  static const char* key = std::getenv("ITSUKA_SIM_DEBUG_KEY");
  if (key == nullptr) return;
  const std::string text = DebugText(msg, key, debug_rounds_);
  if (!text.empty()) {
    std::fprintf(stderr, "t=%ld %s %s->%s %s\n", static_cast<long>(now_), what, from.c_str(),
                 to.c_str(), text.c_str());
  }
}

void Cluster::Deliver(const Message& m) {
  auto it = nodes_.find(m.to);
  DebugMessage(it == nodes_.end() || !it->second.up || !net_.Linked(m.from, m.to) ? "lost" : "recv",
               m.from, m.to, m.msg);
  if (it == nodes_.end() || !it->second.up || !net_.Linked(m.from, m.to)) return;
  SimNode& n = it->second;
  trace_ += "d" + std::to_string(m.seq) + ";";
  n.node->OnPeerMessage(m.from, m.msg, now_, now_);
  Drain(m.to);
}

void Cluster::Send(const std::string& from, const std::string& to, PeerMessage msg) {
  DebugMessage("send", from, to, msg);
  net_.Send(from, to, std::move(msg), now_);
}

void Cluster::UpdateReachability() {
  for (auto& [a, na] : nodes_) {
    if (!na.up) continue;
    for (auto& [b, nb] : nodes_) {
      na.node->SetReachable(b, nb.up && net_.Linked(a, b));
    }
  }
}

// ITSUKA_SIM_DEBUG_KEY=k: every node's rings for key k as they change.
void Cluster::DebugRings(const std::string& id, SimNode& n, uint64_t fp) {
  const char* key = std::getenv("ITSUKA_SIM_DEBUG_KEY");
  n.debug_fp = fp;
  const View& v = n.node->view();
  const Ring r = Ring::Create(options_.partitions, ReadMembers(v), 0).value();
  const Ring w = Ring::Create(options_.partitions, WriteMembers(v), 0).value();
  std::string rs, ws;
  for (const auto& x : r.PreferenceList(r.PartitionOfKey(key), 3)) rs += x + ",";
  for (const auto& x : w.PreferenceList(w.PartitionOfKey(key), 3)) ws += x + ",";
  std::fprintf(stderr, "t=%ld %s read[%s] write[%s] reachable:", static_cast<long>(now_), id.c_str(),
               rs.c_str(), ws.c_str());
  for (const auto& [o, on] : nodes_) std::fprintf(stderr, " %s=%d", o.c_str(), n.node->core().IsReachable(o) ? 1 : 0);
  std::fprintf(stderr, "\n");
}

// ---- what checkers read ------------------------------------------------------------------

std::vector<std::string> Cluster::ids() const {
  std::vector<std::string> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

Object Cluster::Durable(const std::string& id, const std::string& key) const {
  return nodes_.at(id).store->Durable(key);
}

std::vector<std::string> Cluster::Replicas(const std::string& via, const std::string& key) const {
  return core(via).Replicas(key);
}

const View& Cluster::ViewOfNode(const SimNode& n) const { return n.node->view(); }

const View& Cluster::ViewOf(const std::string& id) const { return ViewOfNode(nodes_.at(id)); }

std::vector<std::string> Cluster::LiveMembers() const {
  std::vector<std::string> out;
  for (const auto& [id, n] : nodes_) {
    if (!n.up) continue;
    const MemberState& self = n.node->self_state();
    if (self.status == MemberStatus::kUp) out.push_back(id);
  }
  return out;
}

// True when every live node sees the same statuses and nothing is moving.
bool Cluster::Settled() const {
  const View* first = nullptr;
  for (const auto& [id, n] : nodes_) {
    if (!n.up) continue;
    for (const auto& [mid, m] : ViewOfNode(n)) {
      if (m.status == MemberStatus::kJoining || m.status == MemberStatus::kLeaving) return false;
    }
    if (first == nullptr) {
      first = &ViewOfNode(n);
      continue;
    }
    if (first->size() != ViewOfNode(n).size()) return false;
    for (const auto& [mid, m] : *first) {
      auto it = ViewOfNode(n).find(mid);
      if (it == ViewOfNode(n).end() || it->second.status != m.status) return false;
    }
  }
  return first != nullptr;
}

uint64_t Cluster::StoredHints() const {
  uint64_t keys = 0;
  for (const auto& [id, n] : nodes_) {
    if (!n.hints) continue;
    for (const auto& [t, u] : n.hints->Usage()) keys += u.keys;
  }
  return keys;
}

}  // namespace itsuka::core::sim
