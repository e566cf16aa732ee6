#include "core/node.h"

#include <algorithm>
#include <cstdio>

#include "core/peer_checks.h"

namespace itsuka::core {

bool SplitHostPort(const std::string& text, std::string* host, int* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size()) return false;
  int p = 0;
  for (size_t i = colon + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9' || p > 65535) return false;
    p = p * 10 + (text[i] - '0');
  }
  if (p <= 0 || p > 65535) return false;
  *host = text.substr(0, colon);
  *port = p;
  return true;
}

Node::Node(Gossiper gossiper, NodeStore& store, NodeConfig config)
    : config_(std::move(config)),
      store_(store),
      core_(gossiper.self().id, store, config_.core),
      gossiper_(std::move(gossiper)),
      repair_(gossiper_.self().id, config_.repair),
      rng_(config_.seed) {
  housekeeping_.interval_ms = config_.housekeeping_ms;
  core_tick_.interval_ms = config_.core_tick_ms;
  gossip_tick_.interval_ms = config_.gossip_interval_ms;
}

void Node::Log(LogLine::Level level, std::string text) {
  out_.logs.push_back(LogLine{level, std::move(text)});
}

void Node::Start() {
  if (config_.from_saved_view && gossiper_.self().status != MemberStatus::kLeft) {
    gated_ = true;
    gate_incarnation_ = gossiper_.self().incarnation;
    const MembershipGate g = gate();
    Log(LogLine::Level::kWarn,
        "restarted from a saved view: not coordinating or voting until gossip was exchanged "
        "with " + std::to_string(g.need) + " of its " + std::to_string(g.members) +
            " active members (itself included)");
  }
  UpdateGate();  // a single member is its own majority; a saved left state stays left
  ApplyView();
}

// ---- The membership gate ----------------------------------------------------------------

MembershipGate Node::gate() const {
  MembershipGate g;
  g.state = left_ ? MembershipGate::State::kLeft
                  : (gated_ ? MembershipGate::State::kWaiting : MembershipGate::State::kOpen);
  for (const auto& [id, m] : gossiper_.view()) {
    if (m.status == MemberStatus::kLeft) continue;
    ++g.members;
    const auto heard = gate_heard_.find(id);
    if (id == self() || heard != gate_heard_.end()) ++g.heard;
    if (heard != gate_heard_.end() && heard->second) ++g.serving;
  }
  g.need = g.members / 2 + 1;
  return g;
}

// The gate opens on a majority of the view's active members heard, of which at least one
// serves -- or on all of them heard, every one gated (a whole cluster restarted at once).
// A majority of gated members alone is what stale nodes restarted together also see.
namespace {
bool GateOpens(const MembershipGate& g) {
  return g.heard >= g.need && (g.serving > 0 || g.heard == g.members);
}
}  // namespace

Status Node::Serving() const {
  if (left_) {
    return Status::Unavailable(
        "this node left the cluster (it was decommissioned); it serves no requests: send them "
        "to another member");
  }
  if (!gated_) return Status::Ok();
  const MembershipGate g = gate();
  if (g.heard >= g.need) {
    return Status::TryAgain("node restarted from a saved view; heard " + std::to_string(g.heard) +
                            " of " + std::to_string(g.members) +
                            " members, all restarted too: waiting for a member that serves, or "
                            "for all " + std::to_string(g.members) +
                            " (ITSUKA.GATE OPEN overrides)");
  }
  return Status::TryAgain("node restarted from a saved view; waiting to hear from " +
                          std::to_string(g.need) + " of " + std::to_string(g.members) +
                          " members (" + std::to_string(g.heard) + " heard)");
}

std::string Node::GateSummary() const {
  const MembershipGate g = gate();
  switch (g.state) {
    case MembershipGate::State::kLeft: return "left";
    case MembershipGate::State::kOpen: return "open";
    case MembershipGate::State::kWaiting: break;
  }
  std::string s = "waiting heard=" + std::to_string(g.heard) + " need=" + std::to_string(g.need) +
                  " members=" + std::to_string(g.members);
  if (g.heard >= g.need) s += " serving=0";
  return s;
}

// A gossip message from `from` whose view holds this node at its gated incarnation: the
// peer has heard this node since the restart, and this node hears the peer now. Only a
// GossipAck says whether the peer serves (a Syn leaves what is known).
void Node::NoteGossipFrom(const std::string& from, const PeerMessage& msg, const View& gossip) {
  if (!gated_ || from == self()) return;
  auto it = gossip.find(self());
  if (it == gossip.end() || it->second.incarnation < gate_incarnation_) return;
  bool& serving = gate_heard_[from];
  if (const auto* ack = std::get_if<GossipAck>(&msg)) serving = serving || !ack->sender_gated;
}

void Node::UpdateGate() {
  if (!left_ && gossiper_.self().status == MemberStatus::kLeft) {
    left_ = true;
    gated_ = false;
    Log(LogLine::Level::kWarn,
        "this node has left the cluster (decommissioned): it no longer serves clients, "
        "coordinates or votes; its data directory may be removed once its hints are handed off");
  }
  if (!gated_) return;
  const MembershipGate g = gate();
  if (!GateOpens(g)) return;
  gated_ = false;
  gate_heard_.clear();
  Log(LogLine::Level::kInfo,
      "membership gate open: exchanged gossip with " + std::to_string(g.heard) + " of " +
          std::to_string(g.members) + " active members (itself included; " +
          (g.serving > 0 ? std::to_string(g.serving) + " serving" : "all of them restarted") +
          "); serving");
}

bool Node::OpenGate() {
  if (!gated_) return false;
  const MembershipGate g = gate();
  gated_ = false;
  gate_heard_.clear();
  Log(LogLine::Level::kWarn,
      "membership gate opened by the operator (ITSUKA.GATE OPEN) with " + std::to_string(g.heard) +
          " of " + std::to_string(g.members) + " active members heard: serving on the saved view");
  ApplyView();  // transfers may start now
  return true;
}

bool Node::RefuseClient(uint64_t client_req) {
  Status st = Serving();
  if (st.ok()) return false;
  ++stats_.gate_refused;
  ClientResult r;
  r.client_req = client_req;
  r.status = std::move(st);
  r.applied = false;
  refused_.push_back(std::move(r));
  return true;
}

// While gated or left, a peer request that would make this node vote or coordinate is
// refused (kUnavailable for forwarded operations: nothing was applied here).
bool Node::RefusePeerRequest(const std::string& from, const PeerMessage& msg, int64_t now_ms) {
  if (!gated_ && !left_) return false;
  const bool votes = IsRepairRequest(msg) || std::holds_alternative<ReplicaWrite>(msg) ||
                     std::holds_alternative<ReplicaRead>(msg) ||
                     std::holds_alternative<ForwardPut>(msg) ||
                     std::holds_alternative<ForwardConsistent>(msg) ||
                     std::holds_alternative<PaxosPrepare>(msg) ||
                     std::holds_alternative<PaxosAccept>(msg) ||
                     std::holds_alternative<PaxosCommit>(msg) ||
                     std::holds_alternative<TransferRequest>(msg);
  if (!votes) return false;
  ++stats_.gate_refused;
  const std::string why = Serving().message();
  const auto unavailable = static_cast<uint32_t>(Status::Code::kUnavailable);
  if (const auto* f = std::get_if<ForwardPut>(&msg)) {
    out_.direct.emplace_back(from, ForwardResult{f->req_id, unavailable, why, false, {}});
  } else if (const auto* c = std::get_if<ForwardConsistent>(&msg)) {
    out_.direct.emplace_back(from, ConsistentResult{c->req_id, unavailable, why, false, Object()});
  } else if (std::optional<PeerMessage> reply = RefusalReply(msg, why)) {
    out_.direct.emplace_back(from, std::move(*reply));
  }
  LogRefusal("peer " + from + ": message type " + std::to_string(msg.index()) +
                 " refused: " + why,
             now_ms);
  return true;
}

// ---- Time ---------------------------------------------------------------------------

void Node::StartTicks(int64_t now_ms) {
  ticks_started_ = true;
  for (SubTimer* t : {&housekeeping_, &core_tick_, &gossip_tick_}) t->due_ms = now_ms + t->interval_ms;
}

int64_t Node::NextWakeup() const {
  if (!ticks_started_) return 0;
  return std::min({housekeeping_.due_ms, core_tick_.due_ms, gossip_tick_.due_ms});
}

void Node::Tick(int64_t now_ms, int64_t wall_ms) {
  if (!ticks_started_) StartTicks(now_ms);
  // As libuv runs repeating timers: due ones in the order they were started, each due
  // again an interval after it ran.
  if (now_ms >= housekeeping_.due_ms) {
    housekeeping_.due_ms = now_ms + housekeeping_.interval_ms;
    if (left_) resume_after_gate_.reset();
    if (!shutting_down_ && !gated_ && !left_) {
      if (resume_after_gate_) {
        RepairProgress saved = std::move(*resume_after_gate_);
        resume_after_gate_.reset();
        ResumeRepair(std::move(saved), now_ms);
      }
      ScheduleRepair(now_ms, wall_ms);
      RepairSuspect(now_ms, wall_ms);
    }
  }
  if (now_ms >= core_tick_.due_ms) {
    core_tick_.due_ms = now_ms + core_tick_.interval_ms;
    core_.Tick(now_ms);
    core_.ReplayHints(now_ms, wall_ms);
    repair_.Tick(now_ms);
  }
  if (now_ms >= gossip_tick_.due_ms) {
    gossip_tick_.due_ms = now_ms + gossip_tick_.interval_ms;
    if (!shutting_down_) OnGossipRound();
  }
}

// ---- Membership -----------------------------------------------------------------------

void Node::ApplyView() {
  const View& view = gossiper_.view();
  const uint32_t q = config_.partitions;
  const uint64_t version = OwnershipVersion(view);
  const uint64_t fp = WriteFingerprint(view);
  const bool had_ring = core_.ring().has_value();
  const size_t before = had_ring ? core_.ring()->members().size() : 0;
  const uint64_t before_version = had_ring ? core_.ring()->version() : 0;
  core_.SetRings(Ring::Create(q, ReadMembers(view), version, config_.placement).value(),
                 Ring::Create(q, WriteMembers(view), version, config_.placement).value(), fp);
  // Anti-entropy compares the replicas that hold data now (the read ring), and purges no
  // tombstone of a partition that is moving.
  repair_.SetRing(*core_.ring());
  std::set<uint32_t> moving;
  const size_t n = static_cast<size_t>(config_.core.n);
  for (uint32_t p = 0; p < q; ++p) {
    if (core_.ring()->PreferenceList(p, n) != core_.write_ring()->PreferenceList(p, n)) moving.insert(p);
  }
  repair_.SetMoving(std::move(moving));
  // A gated or left node starts no transfer (its rings may be stale).
  core_.AllowTransfers(!gated_ && !left_ &&
                       MoveVisible(view, [this](const std::string& m) { return core_.IsReachable(m); }));
  if (!had_ring || before_version != version || before != core_.ring()->members().size()) {
    Log(LogLine::Level::kInfo,
        "ring version " + std::to_string(version) + ": " + std::to_string(core_.ring()->members().size()) +
            " member(s) hold data, " + std::to_string(core_.write_ring()->members().size()) +
            " will; copying " + std::to_string(core_.TransfersPending()) + " partition(s) here");
  }
  for (const auto& [id, m] : view) {
    if (id == self() || m.status == MemberStatus::kLeft) continue;
    PeerAddress a;
    a.id = id;
    // A member bound to a wildcard address did not say where it can be reached.
    if (!SplitHostPort(m.peer_addr, &a.host, &a.port) || a.host == "0.0.0.0" || a.host == "::") continue;
    out_.connect.push_back(std::move(a));
  }
  out_.view_changed = true;
}

void Node::OnGossipRound() {
  // Publish a finished transfer only once what it merged is committed (nothing staged).
  const uint64_t fp = WriteFingerprint(gossiper_.view());
  const bool transferred = core_.Synced() == fp || config_.unsafe_synced_before_transfer;
  if (!store_.HasStaged() && fp != 0 && transferred && gossiper_.self().synced != fp) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(fp));
    Log(LogLine::Level::kInfo, std::string("holds every partition of ring ") + hex + " (" +
                                   std::to_string(core_.transferred_objects()) +
                                   " object(s) copied so far)");
    gossiper_.SetSynced(fp);
  }
  const std::string to = gossiper_.Round(rng_);
  UpdateGate();  // Advance may have made this node left
  ApplyView();
  if (!to.empty()) {
    // A seed not heard from yet has no view entry: it was connected from cluster.seeds.
    out_.direct.emplace_back(to, GossipSyn{gossiper_.view()});
    out_.flush_direct = true;
  }
  if (!gated_) return;
  // Gated: every active member not heard from yet (or not known to serve) gets this
  // round's gossip too, so the gate opens within about one round of the members it
  // needs being reachable; the GossipAcks say whether they serve.
  for (const auto& [id, m] : gossiper_.view()) {
    if (id == self() || id == to || m.status == MemberStatus::kLeft) continue;
    if (auto h = gate_heard_.find(id); h != gate_heard_.end() && h->second) continue;
    out_.direct.emplace_back(id, GossipSyn{gossiper_.view()});
    out_.flush_direct = true;
  }
}

void Node::OnGossip(const std::string& from, const PeerMessage& msg, int64_t now_ms) {
  const View* gossip = nullptr;
  if (const auto* syn = std::get_if<GossipSyn>(&msg)) gossip = &syn->view;
  if (const auto* ack = std::get_if<GossipAck>(&msg)) gossip = &ack->view;
  std::vector<std::string> why;
  const View accepted = FilterGossip(gossiper_.view(), *gossip, from, self(), &why);
  if (!why.empty()) {
    stats_.gossip_entries_refused += why.size();
    LogRefusal("gossip from " + from + ": refused " + std::to_string(why.size()) +
                   " member state(s), e.g. " + why[0],
               now_ms);
  }
  NoteGossipFrom(from, msg, *gossip);
  gossiper_.Receive(accepted);
  UpdateGate();
  ApplyView();
  if (std::holds_alternative<GossipSyn>(msg)) {
    out_.direct.emplace_back(from, GossipAck{gossiper_.view(), gated_ || left_});
  }
}

bool Node::Leave(const std::string& id) {
  if (!Serving().ok()) return false;
  const bool ok = gossiper_.Leave(id);
  UpdateGate();
  ApplyView();
  return ok;
}

void Node::SetReachable(const std::string& node, bool up) {
  core_.SetReachable(node, up);
  repair_.SetReachable(node, up);
}

// ---- Clients --------------------------------------------------------------------------

void Node::StartGet(uint64_t client_req, const std::string& key, int r, int pr, int64_t now_ms) {
  if (RefuseClient(client_req)) return;
  core_.StartGet(client_req, key, r, pr, now_ms);
}

void Node::StartPut(uint64_t client_req, const std::string& key, WriteSpec spec, int w, int pw,
                    int64_t now_ms) {
  if (RefuseClient(client_req)) return;
  core_.StartPut(client_req, key, std::move(spec), w, pw, now_ms);
}

void Node::StartConsistent(uint64_t client_req, const std::string& key, bool read, WriteSpec spec,
                           int64_t now_ms) {
  if (RefuseClient(client_req)) return;
  core_.StartConsistent(client_req, key, read, std::move(spec), now_ms);
}

// ---- Peers ----------------------------------------------------------------------------

void Node::LogRefusal(const std::string& text, int64_t now_ms) {
  if (now_ms - last_refusal_log_ms_ < 1000) {
    ++refusals_unlogged_;
    return;
  }
  last_refusal_log_ms_ = now_ms;
  if (refusals_unlogged_ > 0) {
    Log(LogLine::Level::kWarn, text + " (and " + std::to_string(refusals_unlogged_) +
                                   " more refusals since the last warning)");
  } else {
    Log(LogLine::Level::kWarn, text);
  }
  refusals_unlogged_ = 0;
}

void Node::Refuse(const std::string& from, const PeerMessage& msg, const std::string& why,
                  int64_t now_ms) {
  if (std::optional<PeerMessage> reply = RefusalReply(msg, why)) {
    out_.direct.emplace_back(from, std::move(*reply));
  } else if (std::optional<PeerMessage> failed = FailedReply(msg, why)) {
    // A reply this node cannot use: the request it answers fails now, not at its timeout.
    if (IsRepairReply(*failed)) {
      repair_.OnReply(from, *failed, now_ms);
    } else {
      core_.OnMessage(from, *failed, now_ms);
    }
  }
}

void Node::OnPeerRefused(const std::string& from, const PeerMessage* decoded,
                         const std::string& why, int64_t now_ms) {
  ++stats_.peer_messages_refused;
  LogRefusal("peer " + from + ": message refused: " + why, now_ms);
  if (decoded != nullptr) Refuse(from, *decoded, why, now_ms);
}

bool Node::AdmitPeerMessage(const std::string& from, const PeerMessage& msg, int64_t now_ms) {
  SenderContext ctx;
  ctx.view = &gossiper_.view();
  ctx.read = core_.ring() ? &*core_.ring() : nullptr;
  ctx.write = core_.write_ring() ? &*core_.write_ring() : nullptr;
  ctx.n = static_cast<size_t>(config_.core.n);
  ctx.ring_version = OwnershipVersion(gossiper_.view());
  SenderRefusal kind = SenderRefusal::kNone;
  Status st = CheckSender(from, msg, ctx, &kind);
  const std::optional<uint64_t> theirs = RingVersionOf(msg);
  // Not for a stranger: only a member of the view is told the view.
  if (kind == SenderRefusal::kLeft || kind == SenderRefusal::kStaleRing ||
      (kind != SenderRefusal::kNotMember && theirs && *theirs != 0 &&
       *theirs != ctx.ring_version && ctx.view->count(from) != 0)) {
    CatchUp(from, now_ms);
  }
  if (kind == SenderRefusal::kLeft) ++stats_.peer_left_sender_refused;
  if (kind == SenderRefusal::kStaleRing) ++stats_.peer_stale_ring_refused;
  uint64_t* counter = &stats_.peer_senders_refused;
  if (st.ok()) {
    ObjectLimits limits;  // the sibling bound only, as a coordinator's results have
    limits.max_siblings = config_.core.limits.max_siblings;
    st = CheckLimits(msg, limits, static_cast<size_t>(config_.core.n));
    counter = &stats_.peer_messages_refused;
  }
  if (st.ok()) return true;
  ++*counter;
  LogRefusal("peer " + from + ": message type " + std::to_string(msg.index()) +
                 " refused: " + st.message(),
             now_ms);
  Refuse(from, msg, st.message(), now_ms);
  return false;
}

void Node::CatchUp(const std::string& from, int64_t now_ms) {
  auto [it, fresh] = last_catch_up_ms_.emplace(from, now_ms);
  if (!fresh && now_ms - it->second < kCatchUpIntervalMs) return;
  it->second = now_ms;
  ++stats_.ring_catchups;
  out_.direct.emplace_back(from, GossipSyn{gossiper_.view()});
  out_.flush_direct = true;
}

void Node::OnPeerMessage(const std::string& from, const PeerMessage& msg, int64_t now_ms,
                         int64_t wall_ms) {
  if (!AdmitPeerMessage(from, msg, now_ms)) return;
  if (RefusePeerRequest(from, msg, now_ms)) return;
  if (std::holds_alternative<GossipSyn>(msg) || std::holds_alternative<GossipAck>(msg)) {
    OnGossip(from, msg, now_ms);
  } else if (IsRepairRequest(msg)) {
    repair_out_.emplace_back(from, AnswerRepair(msg, wall_ms));
  } else if (IsRepairReply(msg)) {
    repair_.OnReply(from, msg, now_ms);
  } else if (std::holds_alternative<ScanRequest>(msg) || std::holds_alternative<ScanReply>(msg) ||
             std::holds_alternative<KeyCountRequest>(msg) ||
             std::holds_alternative<KeyCountReply>(msg)) {
    out_.keyspace.emplace_back(from, msg);
  } else {
    core_.OnMessage(from, msg, now_ms);
  }
}

Status Node::ClockCheck(const std::function<bool(const std::string&, OffsetSample*)>& offset_of,
                        int64_t* typical_ms) const {
  std::vector<OffsetSample> offsets;
  for (const std::string& id : core_.ring()->members()) {
    OffsetSample s;
    if (id != self() && core_.IsReachable(id) && offset_of(id, &s)) offsets.push_back(s);
  }
  int64_t typical = 0;
  const bool over = config_.max_clock_offset_ms > 0 &&
                    OffsetExceeded(offsets, config_.max_clock_offset_ms, &typical);
  if (typical_ms != nullptr) *typical_ms = typical;
  if (!over) return Status::Ok();
  // Peers' clocks minus ours: a median of +3600000 means this node is an hour behind.
  return Status::InvalidArgument(
      "CLOCKSKEW this node's clock is " + std::to_string(-typical) +
      " ms off from a majority of its reachable peers (median peer offset " +
      std::to_string(typical) + " ms), past cluster.max_clock_offset_ms (" +
      std::to_string(config_.max_clock_offset_ms) +
      "); writes with an expiry are refused here until its clock is fixed");
}

// ---- Rounds ---------------------------------------------------------------------------

bool Node::HasOutput() const {
  return core_.HasOutput() || repair_.HasSends() || !repair_out_.empty() ||
         !repair_local_.empty() || !refused_.empty();
}

NodeOutbox Node::TakeEffects() {
  NodeOutbox out;
  std::swap(out, out_);
  // The answers made here (refusals) carry this node's version for the asker's catch-up.
  const uint64_t version = OwnershipVersion(gossiper_.view());
  for (auto& [to, msg] : out.direct) StampRingVersion(&msg, version);
  return out;
}

NodeOutbox Node::TakeOutbox(int64_t now_ms, int64_t wall_ms) {
  PumpRepair(now_ms, wall_ms);
  NodeOutbox out = TakeEffects();
  Outbox core = core_.TakeOutbox();
  out.sends = std::move(core.sends);
  out.results = std::move(core.results);
  out.writes = std::move(core.writes);
  for (auto& r : refused_) out.results.push_back(std::move(r));
  refused_.clear();
  for (auto& m : repair_out_) out.sends.push_back(std::move(m));
  repair_out_.clear();
  return out;
}

// ---- Anti-entropy ---------------------------------------------------------------------

PeerMessage Node::AnswerRepair(const PeerMessage& msg, int64_t wall_ms) {
  return AnswerRepairRequest(msg, store_, store_, config_.repair_limits, wall_ms,
                             config_.repair_min_grace_ms);
}

void Node::PumpRepair(int64_t now_ms, int64_t wall_ms) {
  // Requests the driver addresses to this node are answered here at once; their
  // replies may make it ask more, so loop (bounded: every pair involves another node,
  // whose answer the driver must wait for).
  // A request that waited for the last commit is answered first, whatever is staged
  // now (newer writes are concurrent with the run, as on any replica).
  std::vector<PeerMessage> waited;
  std::swap(waited, repair_local_);
  for (const PeerMessage& msg : waited) repair_.OnReply(self(), AnswerRepair(msg, wall_ms), now_ms);
  for (int round = 0; round < 64 && repair_.HasSends(); ++round) {
    for (auto& [to, msg] : repair_.TakeSends()) {
      if (to != self()) {
        repair_out_.emplace_back(to, std::move(msg));
      } else if (store_.HasStaged()) {
        // Its Merkle tree and digests would not show what is staged (as a remote
        // replica's would, which commits before it answers): wait for the commit.
        repair_local_.push_back(std::move(msg));
      } else {
        repair_.OnReply(to, AnswerRepair(msg, wall_ms), now_ms);
      }
    }
  }
  ClearRepairedSuspects();
  if (repair_was_running_ && !repair_.running()) NoteRepairFinished(now_ms);
  if (repair_.running()) {
    repair_was_running_ = true;
    runs_.state = "running";
  }
  if (repair_.progress_version() != repair_saved_) SaveRepairProgress();
}

void Node::NoteRepairFinished(int64_t now_ms) {
  repair_was_running_ = false;
  repair_covers_suspect_.clear();
  if (runs_.state == "running") runs_.state = "done";
  runs_.last_end_ms = now_ms;
  ++runs_.completed;
  const RepairTotals& t = repair_.progress().totals;
  runs_.cumulative.partitions_done += t.partitions_done;
  runs_.cumulative.partitions_failed += t.partitions_failed;
  runs_.cumulative.keys_differing += t.keys_differing;
  runs_.cumulative.keys_moved += t.keys_moved;
  runs_.cumulative.bytes_moved += t.bytes_moved;
  runs_.cumulative.tombstones_purged += t.tombstones_purged;
  Log(LogLine::Level::kInfo,
      "repair " + std::to_string(repair_.progress().job.id) + " finished: " +
          std::to_string(t.partitions_done) + " partitions synced, " +
          std::to_string(t.partitions_failed) + " failed, " + std::to_string(t.keys_differing) +
          " keys differing, " + std::to_string(t.keys_moved) + " keys moved, " +
          std::to_string(t.tombstones_purged) + " tombstones purged" + SkippedText());
}

std::string Node::SkippedText() const {
  std::string text;
  for (const auto& [node, parts] : repair_.progress().skipped_replicas) {
    text += (text.empty() ? "; skipped (suspected by the failure detector; run repair --node "
                            "ID again to cover them): "
                          : ", ") +
            node + " in " + std::to_string(parts.size()) + " partition(s)";
  }
  return text;
}

void Node::SaveRepairProgress() {
  repair_saved_ = repair_.progress_version();
  if (runs_.state == "stopped" || runs_.state == "idle") return;
  out_.repair_progress = EncodeRepairProgress(repair_.progress());
}

void Node::SaveRepairProgressIfChanged() {
  if (repair_.progress_version() != repair_saved_) SaveRepairProgress();
}

void Node::ScheduleRepair(int64_t now_ms, int64_t wall_ms) {
  const int64_t interval = config_.repair_interval_ms;
  if (interval <= 0 || repair_.running() || !core_.ring()) return;  // no ring yet: nothing owned
  if (runs_.last_end_ms != 0 && now_ms - runs_.last_end_ms < interval) return;
  if (runs_.last_end_ms == 0 && now_ms - config_.start_ms < interval) return;
  RepairProgress p;
  p.job.id = static_cast<uint64_t>(wall_ms);
  for (uint32_t q = 0; q < core_.ring()->partitions(); ++q) {
    if (core_.ring()->Owner(q) == self()) p.job.partitions.push_back(q);
  }
  if (p.job.partitions.empty()) {
    runs_.last_end_ms = now_ms;
    return;
  }
  runs_.resumed = false;
  if (repair_.Start(std::move(p), now_ms).ok()) {
    runs_.state = "running";
    repair_was_running_ = true;
    NoteRepairStarted();
    Log(LogLine::Level::kInfo, "background repair of the partitions this node owns");
  }
}

void Node::ClearRepairedSuspects() {
  if (repair_covers_suspect_.empty()) return;
  const RepairProgress& p = repair_.progress();
  std::set<uint32_t> covered;
  std::set<uint32_t> partial;  // synced without a replica the detector suspected
  for (const auto& [node, parts] : p.skipped_replicas) partial.insert(parts.begin(), parts.end());
  for (uint32_t q : repair_covers_suspect_) {
    if (p.finished.count(q) && partial.count(q) == 0 &&
        std::find(p.failed.begin(), p.failed.end(), q) == p.failed.end()) {
      covered.insert(q);
    }
  }
  if (covered.empty()) return;
  for (uint32_t q : covered) repair_covers_suspect_.erase(q);
  store_.ClearSuspect(covered);  // saved with this round's commit, after the merges
  Log(LogLine::Level::kInfo, "repair covered " + std::to_string(covered.size()) +
                                 " partition(s) not authoritative here; " +
                                 std::to_string(store_.suspect().size()) + " still are");
}

void Node::NoteRepairStarted() {
  repair_covers_suspect_.clear();
  const RepairJob& job = repair_.progress().job;
  if (job.dry_run || !(job.node.empty() || job.node == self())) return;
  for (uint32_t q : job.partitions) {
    if (store_.suspect().count(q)) repair_covers_suspect_.insert(q);
  }
}

void Node::RepairSuspect(int64_t now_ms, int64_t wall_ms) {
  const std::set<uint32_t>& suspect = store_.suspect();
  if (suspect.empty() || repair_.running() || now_ms < suspect_repair_next_ms_) return;
  // The other replicas are what it is repaired from: wait until they are reachable.
  for (const std::string& m : core_.ring()->members()) {
    if (!core_.IsReachable(m)) return;
  }
  suspect_repair_next_ms_ = now_ms + config_.suspect_retry_ms;
  RepairProgress p;
  p.job.id = static_cast<uint64_t>(wall_ms);
  p.job.partitions.assign(suspect.begin(), suspect.end());
  runs_.resumed = false;
  Status st = repair_.Start(std::move(p), now_ms);
  if (!st.ok()) {
    Log(LogLine::Level::kWarn,
        "cannot start the repair of the partitions not authoritative here: " + st.ToString());
    return;
  }
  runs_.state = "running";
  repair_was_running_ = true;
  NoteRepairStarted();
  SaveRepairProgress();
  Log(LogLine::Level::kWarn, "repairing " + std::to_string(suspect.size()) +
                                 " partition(s) not authoritative here (lost data)");
}

Status Node::StartRepair(RepairProgress progress, int64_t now_ms) {
  if (Status serving = Serving(); !serving.ok()) return serving;
  const RepairJob& job = progress.job;
  const std::string what = "repair " + std::to_string(job.id) + " started: " +
                           std::to_string(job.partitions.size()) + " partition(s)" +
                           (job.node.empty() ? "" : ", pairs with " + job.node) +
                           (job.dry_run ? ", dry run" : "");
  Status st = repair_.Start(std::move(progress), now_ms);
  if (!st.ok()) return st;
  Log(LogLine::Level::kInfo, what);
  runs_.state = "running";
  repair_was_running_ = true;
  runs_.resumed = false;
  NoteRepairStarted();
  SaveRepairProgress();
  return Status::Ok();
}

void Node::StopRepair() {
  if (repair_.running()) {
    Log(LogLine::Level::kInfo, "repair " + std::to_string(repair_.progress().job.id) +
                                   " stopped by the operator");
  }
  repair_.Stop();
  repair_local_.clear();
  repair_was_running_ = false;
  runs_.state = "stopped";
}

void Node::ResumeRepair(RepairProgress progress, int64_t now_ms) {
  if (gated_ || left_) {
    if (!left_) {
      Log(LogLine::Level::kInfo, "repair " + std::to_string(progress.job.id) +
                                     " resumes once the membership gate opens");
      resume_after_gate_ = std::move(progress);
    }
    return;
  }
  std::set<uint32_t> all(progress.job.partitions.begin(), progress.job.partitions.end());
  if (progress.finished.size() < all.size()) {
    Log(LogLine::Level::kInfo, "resuming repair " + std::to_string(progress.job.id) + ": " +
                                   std::to_string(progress.finished.size()) + " of " +
                                   std::to_string(all.size()) + " partitions done");
    runs_.resumed = true;
    Status rs = repair_.Start(std::move(progress), now_ms);
    if (!rs.ok()) Log(LogLine::Level::kWarn, "cannot resume the repair: " + rs.ToString());
  } else {
    (void)repair_.Start(std::move(progress), now_ms);  // shows the last result
    runs_.state = "done";
  }
}

}  // namespace itsuka::core
