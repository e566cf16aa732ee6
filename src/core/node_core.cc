#include "core/node_core.h"

#include <algorithm>

#include "common/hash.h"
#include "core/gossip.h"

namespace itsuka::core {

NodeCore::NodeCore(std::string self, LocalStore& store, NodeOptions options)
    : self_(std::move(self)),
      actor_(options.actor.empty() ? self_ : options.actor),
      store_(store),
      options_(options),
      next_req_(options.first_request_id == 0 ? 1 : options.first_request_id) {}

void NodeCore::SetReachable(const std::string& node, bool up) {
  if (up) {
    unreachable_.erase(node);
  } else if (node != self_) {
    unreachable_.insert(node);
  }
}

bool NodeCore::IsReachable(const std::string& node) const {
  return node == self_ || unreachable_.count(node) == 0;
}

std::vector<std::string> NodeCore::Replicas(std::string_view key) const {
  if (!ring_) return {};
  return ring_->PreferenceList(ring_->PartitionOf(Hash64(key)), static_cast<size_t>(options_.n));
}

namespace {
bool InList(const std::vector<std::string>& list, const std::string& node) {
  return std::find(list.begin(), list.end(), node) != list.end();
}
constexpr uint32_t kPullBatchKeys = 256;
constexpr size_t kPullBatchExamined = 20000;
// Bytes of values per batch (at least one object), well under the peer frame limit.
constexpr size_t kPullBatchBytes = 4 << 20;
}  // namespace

void NodeCore::SetRings(Ring read, Ring write, uint64_t write_fingerprint) {
  ring_ = std::move(read);
  write_ring_ = std::move(write);
  if (write_fingerprint == plan_fingerprint_) return;
  // A new target ring: copy what it gives this node. Copies from an earlier plan that
  // are still useful are simply repeated (merging is idempotent).
  plan_fingerprint_ = write_fingerprint;
  transfers_.clear();
  const size_t n = static_cast<size_t>(options_.n);
  // Being listed in this node's read ring does not prove it holds a partition: its view
  // can be stale (a transition that dropped it from the partition may already have
  // completed elsewhere, after which writes stopped reaching it). What it holds is
  // what it copied for the last ring it synced to; only a node that never synced (a
  // static ring, a restart) trusts its read ring. Partitions it gains beyond that are
  // copied from the read ring's other replicas, which got every write meanwhile.
  if (!held_) {
    held_.emplace();
    for (uint32_t p = 0; p < ring_->partitions(); ++p) {
      if (InList(ring_->PreferenceList(p, n), self_)) held_->insert(p);
    }
  }
  plan_owned_.clear();
  for (auto& [source, parts] : PullPlan(*ring_, *write_ring_, self_, n)) {
    transfers_[source].partitions = std::move(parts);
  }
  const uint32_t q = std::min(ring_->partitions(), write_ring_->partitions());
  for (uint32_t p = 0; p < write_ring_->partitions(); ++p) {
    if (!InList(write_ring_->PreferenceList(p, n), self_)) continue;
    plan_owned_.insert(p);
    if (p >= q || held_->count(p) > 0) continue;
    for (const std::string& src : ring_->PreferenceList(p, n)) {
      if (src != self_) transfers_[src].partitions.insert(p);
    }
  }
  if (transfers_.empty()) MarkSynced();
}

void NodeCore::MarkSynced() {
  synced_ = plan_fingerprint_;
  held_ = plan_owned_;
  transfers_.clear();
}

size_t NodeCore::TransfersPending() const {
  size_t n = 0;
  for (const auto& [src, t] : transfers_) n += t.done ? 0 : t.partitions.size();
  return n;
}

std::vector<std::string> NodeCore::PendingReplicas(std::string_view key) const {
  std::vector<std::string> out;
  if (!write_ring_ || !ring_) return out;
  std::vector<std::string> read = Replicas(key);
  for (const std::string& n : write_ring_->PreferenceList(write_ring_->PartitionOf(Hash64(key)),
                                                          static_cast<size_t>(options_.n))) {
    if (std::find(read.begin(), read.end(), n) == read.end()) out.push_back(n);
  }
  return out;
}

int NodeCore::EffectiveN() const {
  if (!ring_) return 0;
  return std::min<int>(options_.n, static_cast<int>(ring_->members().size()));
}

Outbox NodeCore::TakeOutbox() {
  Outbox o;
  std::swap(o, out_);
  ++round_;
  return o;
}

void NodeCore::CommitFailed(const Status& why) {
  for (auto it = puts_.begin(); it != puts_.end();) {
    PendingPut& p = it->second;
    if (!p.staged || p.staged_round + 1 != round_) {
      ++it;
      continue;
    }
    // Not retired: there is no copy here to hand off.
    if (p.answered) {
      --answered_puts_;
    } else {
      Finish(p.origin, why, true);
    }
    it = puts_.erase(it);
  }
}

// ---- Reads ------------------------------------------------------------------------

void NodeCore::StartGet(uint64_t client_req, const std::string& key, int r, int pr,
                        int64_t now_ms) {
  if (AtCapacity()) {
    out_.results.push_back({client_req, Status::Busy("too many requests in flight"), true, {}});
    return;
  }
  std::vector<Target> targets = ReachableTargets(Replicas(key));
  const uint64_t req = next_req_++;
  auto [it, inserted] = gets_.emplace(
      req, PendingGet{client_req, key, GetCoordinator(targets, r, pr, now_ms + options_.request_timeout_ms)});
  PendingGet& g = it->second;
  if (g.coord.Check() == Outcome::kUnavailable) {
    AnswerGet(g);
    --answered_gets_;
    answered_get_bytes_ -= g.answered_bytes;
    gets_.erase(it);
    return;
  }
  for (const Target& t : g.coord.targets()) {
    if (t.node != self_) out_.sends.emplace_back(t.node, ReplicaRead{req, key});
  }
  for (const Target& t : g.coord.targets()) {
    if (t.node != self_) continue;
    Result<Object> local = store_.Read(key);
    // A copy this node cannot vouch for is merged, but not counted toward R or PR.
    const bool vote = store_.Authoritative(key);
    g.self_not_authoritative = !vote;
    g.coord.OnReply(self_, local.ok() && vote, local.ok() ? *local : Object());
  }
  if (g.coord.outcome() != Outcome::kPending) AnswerGet(g);
  MaybeRetire(it);
}

std::map<uint64_t, NodeCore::PendingGet>::iterator NodeCore::MaybeRetire(
    std::map<uint64_t, PendingGet>::iterator it) {
  PendingGet& g = it->second;
  if (!g.coord.done() &&
      !(g.answered && (answered_gets_ > options_.max_inflight ||
                       answered_get_bytes_ > options_.max_answered_read_bytes))) {
    return std::next(it);
  }
  RepairAfterGet(g);  // with the replies that did arrive
  if (g.answered) {
    --answered_gets_;
    answered_get_bytes_ -= g.answered_bytes;
  }
  return gets_.erase(it);
}

void NodeCore::AnswerGet(PendingGet& g) {
  if (g.answered) return;
  g.answered = true;
  ++answered_gets_;
  for (const Sibling& s : g.coord.merged().siblings) g.answered_bytes += s.value.size();
  answered_get_bytes_ += g.answered_bytes;
  Status st = g.coord.ToStatus();
  if (g.self_not_authoritative && st.code() == Status::Code::kUnavailable) {
    st = Status::Unavailable(st.message() +
                             " (this node's copy is not authoritative: lost data, repair pending)");
  }
  out_.results.push_back({g.client_req, std::move(st), true, g.coord.merged(),
                          ClientResult::OnCommitFailure::kNotApplied});
}

void NodeCore::RepairAfterGet(PendingGet& g) {
  if (g.self_not_authoritative && !g.coord.merged().empty()) {
    Status ignored;  // the copy here is not in StaleReplicas (it had no vote)
    MergeLocally(g.key, g.coord.merged(), &ignored);
  }
  for (const std::string& node : g.coord.StaleReplicas()) {
    if (node == self_) {
      Status ignored;
      MergeLocally(g.key, g.coord.merged(), &ignored);
    } else {
      out_.sends.emplace_back(node, ReplicaWrite{0, g.key, g.coord.merged(), ""});
    }
  }
}

void NodeCore::MergeLocally(const std::string& key, const Object& incoming, Status* status) {
  Result<Object> local = store_.Read(key);
  if (!local.ok()) {
    *status = local.status();
    return;
  }
  Object merged = Merge(*local, incoming);
  if (!(merged == *local)) store_.Stage(key, std::move(merged));
  *status = Status::Ok();
}

// ---- Writes -----------------------------------------------------------------------

void NodeCore::StartPut(uint64_t client_req, const std::string& key, WriteSpec spec, int w,
                        int pw, int64_t now_ms) {
  std::vector<std::string> replicas = Replicas(key);
  const bool replica = std::find(replicas.begin(), replicas.end(), self_) != replicas.end();
  // A primary whose copy is not authoritative hands the write to one that may be (it
  // coordinates itself, reading first, only if no other primary is reachable).
  auto other = std::find_if(replicas.begin(), replicas.end(), [&](const std::string& n) {
    return n != self_ && IsReachable(n);
  });
  if (replica && (store_.Authoritative(key) || other == replicas.end())) {
    Coordinate(Origin{client_req, {}, 0}, key, replicas, std::move(spec), w, pw, now_ms);
    return;
  }
  auto to = replica ? other
                    : std::find_if(replicas.begin(), replicas.end(),
                                   [&](const std::string& n) { return IsReachable(n); });
  if (to == replicas.end()) {
    out_.results.push_back(
        {client_req, Status::Unavailable("need " + std::to_string(w) + " replicas, 0 reachable"),
         true, {}});
    return;
  }
  if (AtCapacity()) {
    out_.results.push_back({client_req, Status::Busy("too many requests in flight"), true, {}});
    return;
  }
  const uint64_t req = next_req_++;
  forwards_.emplace(req, PendingForward{client_req, *to, now_ms + options_.request_timeout_ms});
  out_.sends.emplace_back(*to, ForwardPut{req, key, std::move(spec), static_cast<uint32_t>(w),
                                          static_cast<uint32_t>(pw)});
}

std::vector<Target> NodeCore::WriteTargets(const std::string& key,
                                           const std::vector<std::string>& replicas) const {
  if (!Sloppy() || !ring_) return ReachableTargets(replicas);
  const std::vector<std::string> fallbacks =
      ring_->Fallbacks(ring_->PartitionOf(Hash64(key)), replicas.size());
  std::vector<bool> primary_up, fallback_up;
  for (const std::string& n : replicas) primary_up.push_back(IsReachable(n));
  for (const std::string& n : fallbacks) fallback_up.push_back(IsReachable(n));
  return PickTargets(replicas, fallbacks, primary_up, fallback_up, true);
}

std::vector<Target> NodeCore::ReachableTargets(const std::vector<std::string>& replicas) const {
  std::vector<Target> targets;
  for (const std::string& node : replicas) {
    if (IsReachable(node)) targets.push_back(Target{node, true, {}});
  }
  return targets;
}

void NodeCore::Coordinate(Origin origin, const std::string& key,
                          const std::vector<std::string>& replicas, WriteSpec spec, int w, int pw,
                          int64_t now_ms) {
  if (AtCapacity()) return Finish(origin, Status::Busy("too many requests in flight"), true);
  std::vector<std::string> pending = PendingReplicas(key);
  // While a move is in flight W acks must come from the current owners themselves (PW
  // = W below), so sloppy substitutes would not count: the targets are the owners.
  std::vector<Target> targets =
      pending.empty() ? WriteTargets(key, replicas) : ReachableTargets(replicas);
  std::vector<std::string> new_owners;
  int need_new = 0;
  if (!pending.empty()) {
    // A move in flight: W acks from the current owners (primaries here) and W from the
    // new ones.
    for (const std::string& node : pending) {
      if (IsReachable(node)) targets.push_back(Target{node, false, {}});
    }
    pw = std::max(pw, w);
    new_owners = write_ring_->PreferenceList(write_ring_->PartitionOf(Hash64(key)),
                                             static_cast<size_t>(options_.n));
    need_new = std::min<int>(w, static_cast<int>(new_owners.size()));
    const auto reachable_new = std::count_if(new_owners.begin(), new_owners.end(),
                                             [&](const std::string& n) { return IsReachable(n); });
    if (reachable_new < need_new) {
      return Finish(origin,
                    Status::Unavailable("need " + std::to_string(need_new) + " of the new replicas (a move is in flight), " +
                                        std::to_string(reachable_new) + " reachable"),
                    true);
    }
  }
  const int64_t deadline = now_ms + options_.request_timeout_ms;
  PutCoordinator coord(targets, w, pw, deadline);
  if (coord.Check() == Outcome::kUnavailable) return Finish(origin, coord.ToStatus(), true);
  const uint64_t req = next_req_++;
  const bool read_first = spec.cond != WriteSpec::Cond::kNone;
  auto it = puts_.emplace(req, PendingPut{std::move(origin), std::move(coord), key, std::move(spec),
                                          std::nullopt, {}}).first;
  it->second.new_owners = std::move(new_owners);
  it->second.need_new = need_new;
  PendingPut& p = it->second;
  p.deadline_ms = deadline;
  if (Sloppy()) {
    for (const std::string& primary : replicas) {
      bool covered = std::any_of(targets.begin(), targets.end(), [&](const Target& t) {
        return t.node == primary || t.hint_for == primary;
      });
      if (!covered) p.self_hints.push_back(primary);
    }
  }
  if (!read_first && store_.Authoritative(key)) return ApplyPut(it);
  StartReadBeforeWrite(it);
}

void NodeCore::StartReadBeforeWrite(std::map<uint64_t, PendingPut>::iterator it) {
  PendingPut& p = it->second;
  const uint64_t req = it->first;
  const std::vector<Target>& targets = p.coord.targets();
  // Substitutes answer with the hints they keep for the key (ReadWithHints).
  p.read.emplace(targets, p.coord.need(), 0, p.deadline_ms);
  for (const Target& t : targets) {
    if (t.node != self_) out_.sends.emplace_back(t.node, ReplicaRead{req, p.key});
  }
  Result<Object> local = ReadWithHints(p.key);
  const bool vote = local.ok() && store_.Authoritative(p.key);
  if (p.read->OnReply(self_, vote, local.ok() ? *local : Object()) != Outcome::kPending) {
    ApplyPut(it);
  }
}

void NodeCore::ApplyPut(std::map<uint64_t, PendingPut>::iterator it) {
  PendingPut& p = it->second;
  const uint64_t req = it->first;
  auto fail = [&](const Status& st, bool applied) {
    Finish(p.origin, st, applied);
    puts_.erase(it);
  };
  if (p.read) {
    if (p.read->outcome() != Outcome::kOk) {
      // Nothing was written yet: whatever stopped the read, the write was not applied.
      return fail(Status::Unavailable("read before write: " + p.read->ToStatus().message()), true);
    }
    Status st;
    MergeLocally(p.key, p.read->merged(), &st);
    p.read.reset();
    p.read_done = true;
    if (!st.ok()) return fail(st, true);
  }
  Result<Object> local = store_.Read(p.key);
  if (!local.ok()) return fail(local.status(), true);
  // This read may just have found the copy corrupted: then the new dot must not be
  // taken from it before the other replicas' copies were merged in.
  if (!p.read_done && !store_.Authoritative(p.key)) return StartReadBeforeWrite(it);
  WriteSpec& spec = p.spec;
  std::vector<const Sibling*> live = LiveSiblings(*local, spec.version.written_at_ms);
  using Cond = WriteSpec::Cond;
  if ((spec.cond == Cond::kNx && !live.empty()) ||
      ((spec.cond == Cond::kXx || spec.cond == Cond::kIfLive) && live.empty())) {
    return fail(Status::Ok(), false);
  }
  if (spec.keep_ttl && live.size() == 1) spec.version.expire_at_ms = live[0]->expire_at_ms;
  const VClock context = spec.has_context ? spec.context : local->clock;
  Result<Object> next = ApplyWrite(*local, context, actor_, std::move(spec.version), options_.limits);
  if (!next.ok()) return fail(next.status(), true);
  if (options_.record_writes) {
    const Dot dot{actor_, next->clock.Get(actor_)};
    out_.writes.push_back(WriteRecord{p.key, dot, context, "", false});
    for (const Sibling& s : next->siblings) {
      if (s.dot == dot) {
        out_.writes.back().value = s.value;
        out_.writes.back().tombstone = s.tombstone;
      }
    }
  }
  store_.Stage(p.key, *next);
  p.staged = true;
  p.staged_round = round_;
  for (const std::string& target : p.self_hints) {
    // A refused hint is counted; anti-entropy repair carries what it would have.
    Status ignored = AddHint(target, p.key, *next);
    (void)ignored;
  }
  for (const Target& t : p.coord.targets()) {
    if (t.node != self_) out_.sends.emplace_back(t.node, ReplicaWrite{req, p.key, *next, t.hint_for});
  }
  if (Sloppy()) {
    p.applied = true;
    p.sent = *next;
  }
  // The local copy is durable with this round's commit, before anything is sent.
  if (options_.unsafe_ack_before_quorum && p.new_owners.empty()) {
    if (p.coord.OnAck(self_, true) != Outcome::kPending) return FinishPut(it);
    return fail(Status::Ok(), true);  // BROKEN on purpose
  }
  OnPutAck(it, self_, true);
}

void NodeCore::OnPutAck(std::map<uint64_t, PendingPut>::iterator it, const std::string& node,
                        bool ok) {
  PendingPut& p = it->second;
  if (ok && std::find(p.new_owners.begin(), p.new_owners.end(), node) != p.new_owners.end()) {
    p.new_acks.insert(node);
  }
  p.coord.OnAck(node, ok);
  if (PutDecided(p, INT64_MIN)) FinishPut(it);
}

bool NodeCore::PutDecided(const PendingPut& p, int64_t now_ms) const {
  const Outcome o = p.coord.outcome();
  if (o == Outcome::kPending) return false;
  if (o != Outcome::kOk) return true;
  return static_cast<int>(p.new_acks.size()) >= p.need_new || now_ms >= p.deadline_ms;
}

void NodeCore::FinishPut(std::map<uint64_t, PendingPut>::iterator it) {
  PendingPut& p = it->second;
  if (p.coord.outcome() == Outcome::kOk && static_cast<int>(p.new_acks.size()) < p.need_new) {
    Finish(p.origin,
           Status::Timeout(std::to_string(p.new_acks.size()) + " of " + std::to_string(p.need_new) +
                           " acks from the new replicas (a move is in flight; outcome unknown)"),
           true);
  } else {
    Finish(p.origin, p.coord.ToStatus(), true,
           p.staged && p.staged_round == round_ ? ClientResult::OnCommitFailure::kNotApplied
                                                : ClientResult::OnCommitFailure::kStands);
  }
  if (!p.applied) {
    puts_.erase(it);
    return;
  }
  p.answered = true;
  ++answered_puts_;
  // Too many answered writes waiting: hint the slow targets now rather than grow.
  if (p.answered_by.size() + 1 >= p.coord.targets().size() ||
      answered_puts_ > options_.max_inflight) {
    RetirePut(it);
  }
}

void NodeCore::RetirePut(std::map<uint64_t, PendingPut>::iterator it) {
  PendingPut& p = it->second;
  // Hint only a version this node still holds: if the commit that staged it failed, it
  // exists nowhere, and handing it off would spread a dot this node will issue again.
  Result<Object> local = store_.Read(p.key);
  const bool held = local.ok() && local->clock.Descends(p.sent.clock);
  for (const Target& t : p.coord.targets()) {
    if (!held) break;
    if (t.node == self_ || p.acked.count(t.node)) continue;
    // A replica that did not ack (a primary, or a new owner while a move is in flight),
    // or the primary a silent substitute stood in for.
    Status ignored = AddHint(t.hint_for.empty() ? t.node : t.hint_for, p.key, p.sent);
    (void)ignored;
  }
  if (p.answered) --answered_puts_;
  puts_.erase(it);
}

void NodeCore::Finish(const Origin& origin, const Status& status, bool applied,
                      ClientResult::OnCommitFailure on_failure) {
  if (origin.node.empty()) {
    out_.results.push_back({origin.client_req, status, applied, {}, on_failure});
  } else {
    out_.sends.emplace_back(origin.node,
                            ForwardResult{origin.remote_req, static_cast<uint32_t>(status.code()),
                                          status.message(), applied});
  }
}

// ---- Messages ---------------------------------------------------------------------

void NodeCore::OnMessage(const std::string& from, const PeerMessage& msg, int64_t now_ms) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, ReplicaWrite>) HandleWrite(from, m);
        else if constexpr (std::is_same_v<T, ReplicaRead>) HandleRead(from, m);
        else if constexpr (std::is_same_v<T, ReplicaWriteAck>) HandleWriteAck(from, m);
        else if constexpr (std::is_same_v<T, ReplicaReadReply>) HandleReadReply(from, m);
        else if constexpr (std::is_same_v<T, ForwardPut>) HandleForwardPut(from, m, now_ms);
        else if constexpr (std::is_same_v<T, ForwardResult>) HandleForwardResult(m);
        else if constexpr (std::is_same_v<T, PaxosPrepare>) HandlePaxosPrepare(from, m);
        else if constexpr (std::is_same_v<T, PaxosPromise>) HandlePaxosPromise(from, m, now_ms);
        else if constexpr (std::is_same_v<T, PaxosAccept>) HandlePaxosAccept(from, m);
        else if constexpr (std::is_same_v<T, PaxosAccepted>) HandlePaxosAccepted(from, m, now_ms);
        else if constexpr (std::is_same_v<T, PaxosCommit>) HandlePaxosCommit(m);
        else if constexpr (std::is_same_v<T, ForwardConsistent>) HandleForwardConsistent(from, m, now_ms);
        else if constexpr (std::is_same_v<T, ConsistentResult>) HandleConsistentResult(m);
        else if constexpr (std::is_same_v<T, PullRequest>) HandlePullRequest(from, m);
        else if constexpr (std::is_same_v<T, PullBatch>) HandlePullBatch(from, m, now_ms);
        // Hello is the transport's business.
      },
      msg);
}

void NodeCore::HandleWrite(const std::string& from, const ReplicaWrite& m) {
  Status st;
  if (!m.hint_for.empty() && m.hint_for != self_) {
    const bool member = ring_ && std::find(ring_->members().begin(), ring_->members().end(),
                                           m.hint_for) != ring_->members().end();
    // A hint for a node outside the ring could never be handed off: refuse it.
    st = member ? AddHint(m.hint_for, m.key, m.object)
                : Status::InvalidArgument("hint for a node that is not a member");
  } else {
    MergeLocally(m.key, m.object, &st);
    std::vector<std::string> owners = Replicas(m.key);
    if (st.ok() && std::find(owners.begin(), owners.end(), self_) != owners.end()) {
      // A current owner passes a write on to the key's new owners while a move is in
      // flight, in case its coordinator did not know of the move yet.
      for (const std::string& node : PendingReplicas(m.key)) {
        if (node == from || node == self_ || !IsReachable(node)) continue;
        Result<Object> merged = store_.Read(m.key);
        if (merged.ok()) out_.sends.emplace_back(node, ReplicaWrite{0, m.key, *merged, ""});
      }
    }
  }
  if (m.req_id != 0) out_.sends.emplace_back(from, ReplicaWriteAck{m.req_id, st.ok(), st.ToString()});
}

Result<Object> NodeCore::ReadWithHints(const std::string& key) {
  Result<Object> local = store_.Read(key);
  if (!local.ok() || hints_ == nullptr) return local;
  Object merged = std::move(local).value();
  for (const auto& [target, usage] : hints_->Usage()) {
    Result<std::optional<Hint>> h = hints_->Get(target, key);
    if (!h.ok()) return h.status();
    // An expired hint is as good as dropped: the tombstone grace only covers hints up
    // to handoff.max_hint_age_s, so an older one must not resurface through reads.
    if (h->has_value() && !HintExpired(**h)) merged = Merge(merged, (*h)->object);
  }
  return merged;
}

void NodeCore::HandleRead(const std::string& from, const ReplicaRead& m) {
  Result<Object> local = ReadWithHints(m.key);
  if (local.ok() && !store_.Authoritative(m.key)) {
    // No vote; the object goes along so that the coordinator can still merge it.
    out_.sends.emplace_back(from, ReplicaReadReply{m.req_id, false, *local,
                                                   "not authoritative for the key's partition "
                                                   "(lost data; repair pending)"});
    return;
  }
  out_.sends.emplace_back(from, ReplicaReadReply{m.req_id, local.ok(),
                                                 local.ok() ? *local : Object(),
                                                 local.ok() ? "" : local.status().ToString()});
}

void NodeCore::HandleWriteAck(const std::string& from, const ReplicaWriteAck& m) {
  auto it = puts_.find(m.req_id);
  if (it == puts_.end()) {
    auto r = replays_.find(m.req_id);
    if (r != replays_.end() && r->second.target == from) HandleReplayAck(r, m);
    return;
  }
  PendingPut& p = it->second;
  const bool target = std::any_of(p.coord.targets().begin(), p.coord.targets().end(),
                                  [&](const Target& t) { return t.node == from; });
  if (!target || from == self_) return;
  p.answered_by.insert(from);
  if (m.ok) p.acked.insert(from);
  if (!p.answered) {
    OnPutAck(it, from, m.ok);
  } else if (p.answered_by.size() + 1 >= p.coord.targets().size()) {
    RetirePut(it);  // every other target answered
  }
}

void NodeCore::HandleReadReply(const std::string& from, const ReplicaReadReply& m) {
  auto it = gets_.find(m.req_id);
  if (it == gets_.end()) {
    auto p = puts_.find(m.req_id);  // the read before a conditional write
    if (p != puts_.end() && p->second.read &&
        p->second.read->OnReply(from, m.ok, m.object) != Outcome::kPending) {
      ApplyPut(p);
    }
    return;
  }
  PendingGet& g = it->second;
  if (g.coord.OnReply(from, m.ok, m.object) != Outcome::kPending) AnswerGet(g);
  MaybeRetire(it);
}

void NodeCore::HandleForwardPut(const std::string& from, const ForwardPut& m, int64_t now_ms) {
  Origin origin{0, from, m.req_id};
  std::vector<std::string> replicas = Replicas(m.key);
  if (std::find(replicas.begin(), replicas.end(), self_) == replicas.end()) {
    // The rings disagree (a membership change in flight): refuse rather than issue a
    // dot from a node that does not hold the key.
    return Finish(origin, Status::Unavailable("forwarded to a node that is not a replica"), true);
  }
  Coordinate(origin, m.key, replicas, m.spec, static_cast<int>(m.w), static_cast<int>(m.pw), now_ms);
}

void NodeCore::HandleForwardResult(const ForwardResult& m) {
  auto it = forwards_.find(m.req_id);
  if (it == forwards_.end()) return;
  const Status st = Status::FromCode(static_cast<Status::Code>(m.code), m.message);
  out_.results.push_back({it->second.client_req, st, m.applied, {}});
  forwards_.erase(it);
}

// ---- Partition transfer -----------------------------------------------------------

void NodeCore::HandlePullRequest(const std::string& from, const PullRequest& m) {
  PullBatch reply;
  reply.req_id = m.req_id;
  if (!ring_ || m.ring_partitions != ring_->partitions()) {
    reply.error = "ring has " + std::to_string(ring_ ? ring_->partitions() : 0) + " partitions, not " +
                  std::to_string(m.ring_partitions);
    out_.sends.emplace_back(from, std::move(reply));
    return;
  }
  std::set<uint32_t> wanted(m.partitions.begin(), m.partitions.end());
  const Ring& ring = *ring_;
  auto want = [&](std::string_view key) { return wanted.count(ring.PartitionOf(Hash64(key))) > 0; };
  const size_t max_keys = std::min<uint32_t>(m.max_keys, kPullBatchKeys);
  Result<LocalStore::ScanBatch> batch = store_.Scan(m.start, max_keys, kPullBatchExamined, want);
  if (!batch.ok()) {
    reply.error = batch.status().ToString();
    out_.sends.emplace_back(from, std::move(reply));
    return;
  }
  // The acceptor states of the range the data scan covered, [start, next): a key may
  // have one and no data object (an acceptor holds an accepted value only in its state
  // until a commit reaches it).
  Result<LocalStore::PaxosScanBatch> states = store_.ScanPaxos(
      m.start, batch->done ? std::string_view() : std::string_view(batch->next), max_keys,
      kPullBatchExamined, want);
  if (!states.ok()) {
    reply.error = states.status().ToString();
    out_.sends.emplace_back(from, std::move(reply));
    return;
  }
  // Where this batch ends (nothing: it ends the scan). A shorter state scan cuts the
  // batch at its own stopping point, so the next request resumes both from one key.
  std::optional<std::string> cut;
  if (!batch->done) cut = batch->next;
  if (!states->done) cut = states->next;
  reply.ok = true;
  size_t bytes = 0, i = 0, j = 0;
  std::vector<std::pair<std::string, Object>>& objects = batch->objects;
  std::vector<std::pair<std::string, AcceptorState>>& paxos = states->states;
  while (i < objects.size() || j < paxos.size()) {
    // One key at a time, its object and its state together.
    const bool object_first =
        j == paxos.size() || (i < objects.size() && objects[i].first < paxos[j].first);
    const std::string key = object_first ? objects[i].first : paxos[j].first;
    if (cut && key >= *cut) break;
    const bool has_obj = i < objects.size() && objects[i].first == key;
    const bool has_state = j < paxos.size() && paxos[j].first == key;
    size_t size = key.size();
    if (has_obj) {
      for (const Sibling& s : objects[i].second.siblings) size += s.value.size();
    }
    if (has_state) {
      for (const Sibling& s : paxos[j].second.value.siblings) size += s.value.size();
    }
    if ((!reply.objects.empty() || !reply.paxos.empty()) && bytes + size > kPullBatchBytes) {
      cut = key;  // the rest comes with the next request
      break;
    }
    bytes += size;
    if (has_obj) reply.objects.push_back(std::move(objects[i++]));
    if (has_state) {
      AcceptorState& st = paxos[j++].second;
      reply.paxos.push_back(KeyPaxosState{key, std::move(st.promised), std::move(st.accepted),
                                          std::move(st.value)});
    }
  }
  reply.done = !cut.has_value();
  if (cut) reply.next = std::move(*cut);
  out_.sends.emplace_back(from, std::move(reply));
}

void NodeCore::HandlePullBatch(const std::string& from, const PullBatch& m, int64_t now_ms) {
  auto it = transfers_.find(from);
  if (it == transfers_.end() || it->second.req_id != m.req_id || it->second.done) return;
  Transfer& t = it->second;
  t.req_id = 0;
  if (!m.ok) return;  // retried after the timeout
  for (const auto& [key, obj] : m.objects) {
    if (!ring_ || t.partitions.count(ring_->PartitionOf(Hash64(key))) == 0) continue;
    Status st;
    MergeLocally(key, obj, &st);
    if (!st.ok()) return;  // retried from the same cursor
    ++transferred_objects_;
  }
  // Staged like the objects, so it is durable before the copy is reported synced.
  for (const KeyPaxosState& s : m.paxos) {
    if (!ring_ || t.partitions.count(ring_->PartitionOf(Hash64(s.key))) == 0) continue;
    Result<AcceptorState> mine = store_.ReadPaxos(s.key);
    if (!mine.ok()) return;  // retried from the same cursor
    if (AcceptorMerge(*mine, AcceptorState{s.promised, s.accepted, s.value})) {
      store_.StagePaxos(s.key, std::move(mine).value());
    }
    ++transferred_paxos_states_;
  }
  t.cursor = m.next;
  t.done = m.done;
  t.next_ms = now_ms + options_.transfer_interval_ms;
  DriveTransfers(now_ms);
}

void NodeCore::DriveTransfers(int64_t now_ms) {
  if (transfers_.empty() || synced_ == plan_fingerprint_) return;
  for (auto& [source, t] : transfers_) {
    if (!transfers_allowed_ || t.done || !IsReachable(source)) continue;
    if (t.req_id != 0 && now_ms - t.sent_ms < options_.request_timeout_ms) continue;
    if (t.req_id == 0 && now_ms < t.next_ms) continue;
    t.req_id = next_req_++;
    t.sent_ms = now_ms;
    out_.sends.emplace_back(source, PullRequest{t.req_id, ring_->partitions(),
                                                std::vector<uint32_t>(t.partitions.begin(), t.partitions.end()),
                                                t.cursor, kPullBatchKeys});
  }
  // Complete when every partition was copied from all its read-ring replicas, or from
  // all but one that is unreachable: a write acknowledged by W >= 2 of them is on at
  // least one of the others.
  std::map<uint32_t, std::pair<int, int>> per_partition;  // done, total
  std::set<uint32_t> missing_unreachable;
  for (const auto& [source, t] : transfers_) {
    for (uint32_t p : t.partitions) {
      auto& [done, total] = per_partition[p];
      ++total;
      if (t.done) ++done;
      else if (!IsReachable(source)) missing_unreachable.insert(p);
    }
  }
  for (const auto& [p, counts] : per_partition) {
    const auto [done, total] = counts;
    if (done == total) continue;
    if (done >= std::max(1, total - 1) && missing_unreachable.count(p)) continue;
    return;
  }
  MarkSynced();  // what a skipped source held is on the others
}

void NodeCore::Tick(int64_t now_ms) {
  DriveTransfers(now_ms);
  for (auto it = puts_.begin(); it != puts_.end();) {
    auto next = std::next(it);
    if (it->second.read) {
      if (it->second.read->OnTime(now_ms) != Outcome::kPending) ApplyPut(it);
    } else if (it->second.answered) {
      if (now_ms >= it->second.deadline_ms) RetirePut(it);
    } else {
      it->second.coord.OnTime(now_ms);
      if (PutDecided(it->second, now_ms)) FinishPut(it);
    }
    it = next;
  }
  for (auto it = gets_.begin(); it != gets_.end();) {
    if (it->second.coord.OnTime(now_ms) != Outcome::kPending) AnswerGet(it->second);
    it = MaybeRetire(it);
  }
  for (auto it = replays_.begin(); it != replays_.end();) {
    if (now_ms >= it->second.deadline_ms) {
      ++handoff_stats_.replay_failed;
      replaying_.erase({it->second.target, it->second.key});
      it = replays_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (now_ms >= it->second.deadline_ms) {
      out_.results.push_back({it->second.client_req,
                              Status::Timeout("forwarded to " + it->second.to +
                                              ", no answer (outcome unknown)"),
                              true, {}});
      it = forwards_.erase(it);
    } else {
      ++it;
    }
  }
  TickConsistent(now_ms);
}

// ---- Hinted handoff ---------------------------------------------------------------

void NodeCore::SetHintStore(HintStore* hints, HandoffOptions options) {
  hints_ = hints;
  handoff_ = options;
  replay_limiter_ = RateLimiter(options.rate_keys_per_s);
}

Status NodeCore::AddHint(const std::string& target, const std::string& key, const Object& obj) {
  if (hints_ == nullptr) return Status::Unavailable("this node keeps no hints");
  Status st = hints_->Add(target, key, obj);
  if (st.ok()) {
    ++handoff_stats_.written;
  } else {
    ++handoff_stats_.refused;
  }
  return st;
}

bool NodeCore::HintExpired(const Hint& h) const {
  return wall_ms_ != 0 && wall_ms_ - h.updated_ms > handoff_.max_hint_age_ms;
}

void NodeCore::ExpireHints(const std::string& target, int64_t now_ms) {
  int64_t& next = expire_next_ms_[target];
  if (now_ms < next) return;
  next = now_ms + 1000;  // one bounded sweep step per target per second
  std::string& cursor = expire_cursor_[target];
  Result<std::vector<Hint>> batch = hints_->Scan(target, cursor, kExpireBatch);
  if (!batch.ok()) return;
  for (const Hint& h : *batch) {
    cursor = h.key + '\0';
    if (HintExpired(h) && !replaying_.count({target, h.key})) {
      hints_->Remove(target, h.key);
      ++handoff_stats_.dropped;
    }
  }
  if (batch->size() < kExpireBatch) cursor.clear();
}

void NodeCore::ReplayHints(int64_t now_ms, int64_t wall_ms) {
  if (hints_ == nullptr) return;
  wall_ms_ = wall_ms;
  for (const auto& [target, usage] : hints_->Usage()) {
    if (target == self_) continue;
    // A node that left the ring is not replayed to, nor one that is unreachable; their
    // hints still expire (handoff.max_hint_age_s), which the tombstone grace relies on.
    if (!IsReachable(target) || !ring_ ||
        std::find(ring_->members().begin(), ring_->members().end(), target) ==
            ring_->members().end()) {
      ExpireHints(target, now_ms);
      continue;
    }
    size_t inflight = 0;
    for (const auto& [t, k] : replaying_) inflight += t == target ? 1 : 0;
    if (inflight >= handoff_.max_inflight_per_target) continue;
    const size_t want = handoff_.max_inflight_per_target - inflight;
    const size_t granted = replay_limiter_.Take(now_ms, want);
    if (granted == 0) return;
    std::string& cursor = replay_cursor_[target];
    // Hints in flight are skipped, so ask for enough to find `granted` others.
    Result<std::vector<Hint>> batch = hints_->Scan(target, cursor, granted + inflight);
    if (!batch.ok()) {
      replay_limiter_.Refund(granted);
      continue;
    }
    size_t used = 0;
    for (Hint& h : *batch) {
      if (used == granted) break;
      cursor = h.key + '\0';  // the smallest key after h.key
      if (replaying_.count({target, h.key})) continue;
      ++used;
      if (wall_ms - h.updated_ms > handoff_.max_hint_age_ms) {
        hints_->Remove(target, h.key);
        ++handoff_stats_.dropped;
        continue;
      }
      const uint64_t req = next_req_++;
      out_.sends.emplace_back(target, ReplicaWrite{req, h.key, h.object, ""});
      replaying_.insert({target, h.key});
      replays_.emplace(req, PendingReplay{target, std::move(h.key), std::move(h.object),
                                          now_ms + options_.request_timeout_ms});
    }
    if (batch->size() < granted + inflight) cursor.clear();  // reached the end: wrap around
    replay_limiter_.Refund(granted - used);
  }
}

void NodeCore::HandleReplayAck(std::map<uint64_t, PendingReplay>::iterator it,
                               const ReplicaWriteAck& m) {
  PendingReplay& r = it->second;
  if (!m.ok) {
    ++handoff_stats_.replay_failed;
  } else {
    // The target holds what was sent, durably. A hint that changed meanwhile (a newer
    // write merged into it) stays, to be sent again.
    Result<std::optional<Hint>> now = hints_->Get(r.target, r.key);
    if (now.ok() && now->has_value() && (*now)->object == r.sent) {
      hints_->Remove(r.target, r.key);
      ++handoff_stats_.replayed;
    }
  }
  replaying_.erase({r.target, r.key});
  replays_.erase(it);
}

}  // namespace itsuka::core
