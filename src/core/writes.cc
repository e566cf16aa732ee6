#include "core/writes.h"

#include <algorithm>

#include "common/hash.h"

namespace itsuka::core {

// ---- Forwarding -------------------------------------------------------------------

uint64_t Forwarder::Open(uint64_t client_req, const std::string& to, int64_t now_ms,
                         std::optional<std::string> record_key) {
  const uint64_t req = ctx_.requests.Open(Room::kForwards);
  forwards_.emplace(req, PendingForward{client_req, to, now_ms,
                                        now_ms + ctx_.options.request_timeout_ms,
                                        std::move(record_key)});
  return req;
}

void Forwarder::OnResult(uint64_t req_id, const std::string& from, const Status& status,
                         bool applied, const Object& object) {
  auto it = forwards_.find(req_id);
  if (it == forwards_.end() || it->second.to != from) return;
  const PendingForward& f = it->second;
  if (f.record_key) {
    // An eventual write: the object is the coordinator's, durable there and at W
    // targets; the client hears only the status.
    if (status.ok() && applied) ctx_.recent.Record(*f.record_key, object, f.opened_ms, ctx_.round);
    ctx_.out.results.push_back({f.client_req, status, applied, HasCounter(object) ? object : Object()});
    ctx_.requests.Close(req_id);
    forwards_.erase(it);
    return;
  }
  ctx_.out.results.push_back({f.client_req, status, applied, object});
  ctx_.requests.Close(req_id);
  forwards_.erase(it);
}

void Forwarder::Tick(int64_t now_ms) {
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (now_ms >= it->second.deadline_ms) {
      ctx_.out.results.push_back({it->second.client_req,
                                  Status::Timeout("forwarded to " + it->second.to +
                                                  ", no answer (outcome unknown)"),
                                  true, {}});
      ctx_.requests.Close(it->first);
      it = forwards_.erase(it);
    } else {
      ++it;
    }
  }
}

// ---- Coordination -----------------------------------------------------------------

void Writes::Start(uint64_t client_req, const std::string& key, WriteSpec spec, int w, int pw,
                   int64_t now_ms) {
  std::vector<std::string> replicas = ctx_.Replicas(key);
  const bool replica = std::find(replicas.begin(), replicas.end(), ctx_.self) != replicas.end();
  // A primary whose copy is not authoritative hands the write to one that may be (it
  // coordinates itself, reading first, only if no other primary is reachable).
  auto other = std::find_if(replicas.begin(), replicas.end(), [&](const std::string& n) {
    return n != ctx_.self && ctx_.IsReachable(n);
  });
  // Read-your-writes: what this node acknowledged for the key lately goes along.
  Object seen = ctx_.recent.Get(key, now_ms);
  if (!seen.empty()) ctx_.recent.CountMerged();
  if (replica && (ctx_.store.Authoritative(key) || other == replicas.end())) {
    ++coordinated_;
    Coordinate(Origin{client_req, {}, 0}, key, replicas, std::move(spec), w, pw, std::move(seen),
               now_ms);
    return;
  }
  auto to = replica ? other
                    : std::find_if(replicas.begin(), replicas.end(),
                                   [&](const std::string& n) { return ctx_.IsReachable(n); });
  if (to == replicas.end()) {
    ctx_.out.results.push_back(
        {client_req, Status::Unavailable("need " + std::to_string(w) + " replicas, 0 reachable"),
         true, {}});
    return;
  }
  if (ctx_.at_capacity()) {
    ctx_.out.results.push_back(
        {client_req, Status::Busy("too many requests in flight"), true, {}});
    return;
  }
  ++forwarded_;
  const uint64_t req = forwarder_.Open(client_req, *to, now_ms, key);
  ctx_.out.sends.emplace_back(*to, ForwardPut{req, key, std::move(spec), static_cast<uint32_t>(w),
                                              static_cast<uint32_t>(pw), std::move(seen)});
}

std::vector<Target> Writes::WriteTargets(const std::string& key,
                                         const std::vector<std::string>& replicas) const {
  if (!handoff_.Sloppy() || !ctx_.ring) return ctx_.ReachableTargets(replicas);
  const std::vector<std::string> fallbacks =
      ctx_.ring->Fallbacks(ctx_.ring->PartitionOfKey(key), replicas.size());
  std::vector<bool> primary_up, fallback_up;
  for (const std::string& n : replicas) primary_up.push_back(ctx_.IsReachable(n));
  for (const std::string& n : fallbacks) fallback_up.push_back(ctx_.IsReachable(n));
  return PickTargets(replicas, fallbacks, primary_up, fallback_up, true);
}

void Writes::Coordinate(Origin origin, const std::string& key,
                        const std::vector<std::string>& replicas, WriteSpec spec, int w, int pw,
                        Object seen, int64_t now_ms) {
  if (ctx_.at_capacity()) return Finish(origin, Status::Busy("too many requests in flight"), true);
  std::vector<std::string> pending = ctx_.PendingReplicas(key);
  // While a move is in flight W acks must come from the current owners themselves (PW
  // = W below), so sloppy substitutes would not count: the targets are the owners.
  std::vector<Target> targets =
      pending.empty() ? WriteTargets(key, replicas) : ctx_.ReachableTargets(replicas);
  std::vector<std::string> new_owners;
  int need_new = 0;
  if (!pending.empty()) {
    // A move in flight: W acks from the current owners (primaries here) and W from the
    // new ones.
    for (const std::string& node : pending) {
      if (ctx_.IsReachable(node)) targets.push_back(Target{node, false, {}});
    }
    pw = std::max(pw, w);
    new_owners = ctx_.write_ring->PreferenceList(ctx_.write_ring->PartitionOfKey(key),
                                                 static_cast<size_t>(ctx_.options.n));
    need_new = std::min<int>(w, static_cast<int>(new_owners.size()));
    const auto reachable_new =
        std::count_if(new_owners.begin(), new_owners.end(),
                      [&](const std::string& n) { return ctx_.IsReachable(n); });
    if (reachable_new < need_new) {
      return Finish(origin,
                    Status::Unavailable("need " + std::to_string(need_new) + " of the new replicas (a move is in flight), " +
                                        std::to_string(reachable_new) + " reachable"),
                    true);
    }
  }
  const int64_t deadline = now_ms + ctx_.options.request_timeout_ms;
  PutCoordinator coord(targets, w, pw, deadline);
  if (coord.Check() == Outcome::kUnavailable) return Finish(origin, coord.ToStatus(), true);
  const uint64_t req = ctx_.requests.Open(Room::kWrites);
  const bool read_first = spec.cond != WriteSpec::Cond::kNone;
  auto it =
      puts_.try_emplace(req, std::move(origin), std::move(coord), key, std::move(spec)).first;
  PendingPut& p = it->second;
  p.new_owners = std::move(new_owners);
  p.need_new = need_new;
  p.deadline_ms = deadline;
  p.started_ms = now_ms;
  p.seen = std::move(seen);
  if (handoff_.Sloppy()) {
    for (const std::string& primary : replicas) {
      bool covered = std::any_of(targets.begin(), targets.end(), [&](const Target& t) {
        return t.node == primary || t.hint_for == primary;
      });
      if (!covered) p.self_hints.push_back(primary);
    }
  }
  if (!read_first && ctx_.store.Authoritative(key)) return Apply(it);
  StartReadBeforeWrite(it);
}

void Writes::StartReadBeforeWrite(PutIt it) {
  PendingPut& p = it->second;
  const uint64_t req = it->first;
  const std::vector<Target>& targets = p.coord.targets();
  // Substitutes answer with the hints they keep for the key (Handoff::ReadWithHints).
  p.read.emplace(targets, p.coord.need(), 0, p.deadline_ms);
  for (const Target& t : targets) {
    if (t.node != ctx_.self) ctx_.out.sends.emplace_back(t.node, ReplicaRead{req, p.key});
  }
  Result<Object> local = handoff_.ReadWithHints(p.key);
  const bool vote = local.ok() && ctx_.store.Authoritative(p.key);
  if (p.read->OnReply(ctx_.self, vote, local.ok() ? *local : Object()) != Outcome::kPending) {
    Apply(it);
  }
}

void Writes::Apply(PutIt it) {
  PendingPut& p = it->second;
  auto fail = [&](const Status& st, bool applied) {
    Finish(p.origin, st, applied);
    Forget(it);
  };
  if (p.read) {
    if (p.read->outcome() != Outcome::kOk) {
      // Nothing was written yet: whatever stopped the read, the write was not applied.
      return fail(Status::Unavailable("read before write: " + p.read->ToStatus().message()), true);
    }
    Status st = ctx_.MergeLocally(p.key, p.read->merged());
    p.read.reset();
    p.read_done = true;
    if (!st.ok()) return fail(st, true);
  }
  if (!p.seen.empty()) {
    // The client's node acknowledged these versions: the condition and the context
    // must see them even if no replica read did (their W acks may be hints elsewhere).
    Status st = ctx_.MergeLocally(p.key, p.seen);
    p.seen = Object();
    if (!st.ok()) return fail(st, true);
  }
  Result<Object> local = ctx_.store.Read(p.key);
  if (!local.ok()) return fail(local.status(), true);
  // This read may just have found the copy corrupted: then the new dot must not be
  // taken from it before the other replicas' copies were merged in.
  if (!p.read_done && !ctx_.store.Authoritative(p.key)) return StartReadBeforeWrite(it);
  WriteSpec& spec = p.spec;
  std::vector<const Sibling*> live = LiveSiblings(*local, spec.version.written_at_ms);
  using Cond = WriteSpec::Cond;
  if ((spec.cond == Cond::kNx && !live.empty()) ||
      ((spec.cond == Cond::kXx || spec.cond == Cond::kIfLive) && live.empty())) {
    return fail(Status::Ok(), false);
  }
  if (spec.keep_ttl && live.size() == 1) spec.version.expire_at_ms = live[0]->expire_at_ms;
  const VClock context = spec.has_context ? spec.context : local->clock;
  int64_t delta = 0;
  const bool increment = spec.cond == Cond::kIncrement;
  if (increment && !ParseCounterDelta(spec.version.value, &delta)) {
    return fail(Status::InvalidArgument("bad counter increment"), true);
  }
  Result<Object> next = ApplyWrite(*local, context, ctx_.actor, std::move(spec.version),
                                   ctx_.options.limits, increment ? &delta : nullptr);
  if (!next.ok()) return fail(next.status(), true);
  if (ctx_.options.record_writes) {
    const Dot dot{ctx_.actor, next->clock.Get(ctx_.actor)};
    ctx_.out.writes.push_back(WriteRecord{p.key, dot, context, "", false});
    for (const Sibling& s : next->siblings) {
      if (s.dot == dot) {
        ctx_.out.writes.back().value = s.value;
        ctx_.out.writes.back().tombstone = s.tombstone;
      }
    }
  }
  StageAndSend(it, *next);
  // The local copy is durable with this round's commit, before anything is sent.
  if (ctx_.options.unsafe_ack_before_quorum && p.new_owners.empty()) {
    if (p.coord.OnAck(ctx_.self, true) != Outcome::kPending) return FinishPut(it);
    return fail(Status::Ok(), true);  // BROKEN on purpose
  }
  OnPutAck(it, ctx_.self, true);
}

void Writes::StageAndSend(PutIt it, const Object& next) {
  PendingPut& p = it->second;
  ctx_.store.Stage(p.key, next);
  p.staged = true;
  p.staged_round = ctx_.round;
  for (const std::string& target : p.self_hints) {
    // A refused hint is counted; anti-entropy repair carries what it would have.
    Status ignored = handoff_.AddHint(target, p.key, next);
    (void)ignored;
  }
  for (const Target& t : p.coord.targets()) {
    if (t.node != ctx_.self) {
      ctx_.out.sends.emplace_back(t.node, ReplicaWrite{it->first, p.key, next, t.hint_for});
    }
  }
  p.sent = next;
  p.applied = handoff_.Sloppy();
}

// ---- Acks and outcomes ------------------------------------------------------------

void Writes::OnPutAck(PutIt it, const std::string& node, bool ok) {
  PendingPut& p = it->second;
  if (ok && std::find(p.new_owners.begin(), p.new_owners.end(), node) != p.new_owners.end()) {
    p.new_acks.insert(node);
  }
  p.coord.OnAck(node, ok);
  if (QuorumsDecided(p)) FinishPut(it);
}

bool Writes::QuorumsDecided(const PendingPut& p) const {
  const Outcome o = p.coord.outcome();
  if (o == Outcome::kPending) return false;
  if (o != Outcome::kOk) return true;
  return static_cast<int>(p.new_acks.size()) >= p.need_new;
}

bool Writes::DecidedAt(const PendingPut& p, int64_t now_ms) const {
  if (QuorumsDecided(p)) return true;
  return p.coord.outcome() == Outcome::kOk && now_ms >= p.deadline_ms;
}

void Writes::FinishPut(PutIt it) {
  PendingPut& p = it->second;
  if (p.coord.outcome() == Outcome::kOk && static_cast<int>(p.new_acks.size()) < p.need_new) {
    Finish(p.origin,
           Status::Timeout(std::to_string(p.new_acks.size()) + " of " + std::to_string(p.need_new) +
                           " acks from the new replicas (a move is in flight; outcome unknown)"),
           true);
  } else {
    const bool ok = p.coord.outcome() == Outcome::kOk;
    // Read-your-writes: the client's node keeps what it acknowledges (a local client
    // here; a forwarding node from the ForwardResult).
    if (ok && p.origin.node.empty()) ctx_.recent.Record(p.key, p.sent, p.started_ms, ctx_.round);
    Finish(p.origin, p.coord.ToStatus(), true,
           p.staged && p.staged_round == ctx_.round ? ClientResult::OnCommitFailure::kNotApplied
                                                    : ClientResult::OnCommitFailure::kStands,
           ok && (p.spec.cond == WriteSpec::Cond::kIncrement ||
                  ApproxBytes(p.sent) <= ctx_.options.recent_writes.max_entry_bytes)
               ? p.sent
               : Object());
  }
  if (!p.applied) {
    Forget(it);
    return;
  }
  p.answered = true;
  ++answered_;
  // Too many answered writes waiting: hint the slow targets now rather than grow.
  if (p.answered_by.size() + 1 >= p.coord.targets().size() ||
      answered_ > ctx_.options.max_inflight) {
    RetirePut(it);
  }
}

void Writes::RetirePut(PutIt it) {
  PendingPut& p = it->second;
  // Hint only a version this node still holds: if the commit that staged it failed, it
  // exists nowhere, and handing it off would spread a dot this node will issue again.
  Result<Object> local = ctx_.store.Read(p.key);
  const bool held = local.ok() && local->clock.Descends(p.sent.clock);
  for (const Target& t : p.coord.targets()) {
    if (!held) break;
    if (t.node == ctx_.self || p.acked.count(t.node)) continue;
    // A replica that did not ack (a primary, or a new owner while a move is in flight),
    // or the primary a silent substitute stood in for.
    Status ignored = handoff_.AddHint(t.hint_for.empty() ? t.node : t.hint_for, p.key, p.sent);
    (void)ignored;
  }
  Forget(it);
}

Writes::PutIt Writes::Forget(PutIt it) {
  if (it->second.answered) --answered_;
  ctx_.requests.Close(it->first);
  return puts_.erase(it);
}

void Writes::Finish(const Origin& origin, const Status& status, bool applied,
                    ClientResult::OnCommitFailure on_failure, const Object& written) {
  if (origin.node.empty()) {
    // An increment's client hears the value it made (ReadCounter of the written object).
    ctx_.out.results.push_back(
        {origin.client_req, status, applied, HasCounter(written) ? written : Object(), on_failure});
  } else {
    ctx_.out.sends.emplace_back(origin.node,
                                ForwardResult{origin.remote_req, static_cast<uint32_t>(status.code()),
                                              status.message(), applied, written});
  }
}

void Writes::CommitFailed(const Status& why) {
  // What was recorded for read-your-writes in the failed round may exist nowhere.
  ctx_.recent.DropRound(ctx_.round - 1);
  for (auto it = puts_.begin(); it != puts_.end();) {
    PendingPut& p = it->second;
    if (!p.staged || p.staged_round + 1 != ctx_.round) {
      ++it;
      continue;
    }
    // Not retired: there is no copy here to hand off.
    if (!p.answered) Finish(p.origin, why, true);
    it = Forget(it);
  }
}

void Writes::Tick(int64_t now_ms) {
  for (auto it = puts_.begin(); it != puts_.end();) {
    auto next = std::next(it);
    if (it->second.read) {
      if (it->second.read->OnTime(now_ms) != Outcome::kPending) Apply(it);
    } else if (it->second.answered) {
      if (now_ms >= it->second.deadline_ms) RetirePut(it);
    } else {
      it->second.coord.OnTime(now_ms);
      if (DecidedAt(it->second, now_ms)) FinishPut(it);
    }
    it = next;
  }
}

// ---- Replies and the replica side -------------------------------------------------

void Writes::OnAck(uint64_t req_id, const std::string& from, const ReplicaWriteAck& m) {
  auto it = puts_.find(req_id);
  if (it == puts_.end()) return;
  PendingPut& p = it->second;
  const bool target = std::any_of(p.coord.targets().begin(), p.coord.targets().end(),
                                  [&](const Target& t) { return t.node == from; });
  if (!target || from == ctx_.self) return;
  p.answered_by.insert(from);
  if (m.ok) p.acked.insert(from);
  if (!p.answered) {
    OnPutAck(it, from, m.ok);
  } else if (p.answered_by.size() + 1 >= p.coord.targets().size()) {
    RetirePut(it);  // every other target answered
  }
}

void Writes::OnReadReply(uint64_t req_id, const std::string& from, const ReplicaReadReply& m) {
  auto p = puts_.find(req_id);
  if (p != puts_.end() && p->second.read &&
      p->second.read->OnReply(from, m.ok, m.object) != Outcome::kPending) {
    Apply(p);
  }
}

void Writes::HandleForwardPut(const std::string& from, const ForwardPut& m, int64_t now_ms) {
  Origin origin{0, from, m.req_id};
  std::vector<std::string> replicas = ctx_.Replicas(m.key);
  if (std::find(replicas.begin(), replicas.end(), ctx_.self) == replicas.end()) {
    // The rings disagree (a membership change in flight): refuse rather than issue a
    // dot from a node that does not hold the key.
    return Finish(origin, Status::Unavailable("forwarded to a node that is not a replica"), true);
  }
  Coordinate(origin, m.key, replicas, m.spec, static_cast<int>(m.w), static_cast<int>(m.pw), m.seen,
             now_ms);
}

void Writes::HandleWrite(const std::string& from, const ReplicaWrite& m) {
  Status st;
  if (!m.hint_for.empty() && m.hint_for != ctx_.self) {
    const bool member = ctx_.ring && std::find(ctx_.ring->members().begin(),
                                               ctx_.ring->members().end(),
                                               m.hint_for) != ctx_.ring->members().end();
    // A hint for a node outside the ring could never be handed off: refuse it.
    st = member ? handoff_.AddHint(m.hint_for, m.key, m.object)
                : Status::InvalidArgument("hint for a node that is not a member");
  } else {
    st = ctx_.MergeLocally(m.key, m.object);
    if (st.ok() && ctx_.IsPrimary(m.key)) {
      // A current owner passes a write on to the key's new owners while a move is in
      // flight, in case its coordinator did not know of the move yet.
      for (const std::string& node : ctx_.PendingReplicas(m.key)) {
        if (node == from || node == ctx_.self || !ctx_.IsReachable(node)) continue;
        Result<Object> merged = ctx_.store.Read(m.key);
        if (merged.ok()) ctx_.out.sends.emplace_back(node, ReplicaWrite{0, m.key, *merged, ""});
      }
    }
  }
  if (m.req_id != 0) {
    ctx_.out.sends.emplace_back(from, ReplicaWriteAck{m.req_id, st.ok(), st.ToString()});
  }
}

}  // namespace itsuka::core
