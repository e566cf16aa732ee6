#include "core/reads.h"

#include "core/merkle.h"

namespace itsuka::core {

void Reads::Start(uint64_t client_req, const std::string& key, int r, int pr, int64_t now_ms) {
  if (ctx_.at_capacity()) {
    ctx_.out.results.push_back(
        {client_req, Status::Busy("too many requests in flight"), true, {}});
    return;
  }
  std::vector<Target> targets = ctx_.ReachableTargets(ctx_.Replicas(key));
  const uint64_t req = ctx_.requests.Open(Room::kReads);
  auto [it, inserted] = gets_.emplace(
      req, PendingGet{client_req, key,
                      GetCoordinator(targets, r, pr, now_ms + ctx_.options.request_timeout_ms)});
  PendingGet& g = it->second;
  g.seen = ctx_.recent.Get(key, now_ms);
  if (g.coord.Check() == Outcome::kUnavailable) {
    Answer(g);
    Forget(&it);
    return;
  }
  // This node's own copy first: when it may vote, the other replicas are asked for
  // their copy only if it differs from this one (digest reads).
  bool self_target = false;
  for (const Target& t : g.coord.targets()) self_target = self_target || t.node == ctx_.self;
  Result<Object> local = self_target ? ctx_.store.Read(key) : Result<Object>(Object());
  // A copy this node cannot vouch for is merged, but not counted toward R or PR.
  const bool authoritative = self_target && ctx_.store.Authoritative(key);
  const bool vote = authoritative && local.ok();
  g.digest_only = vote;
  const uint64_t digest = vote ? ObjectDigest(*local) : 0;
  for (const Target& t : g.coord.targets()) {
    if (t.node != ctx_.self) {
      ctx_.out.sends.emplace_back(t.node, ReplicaRead{req, key, 0, g.digest_only, digest});
    }
  }
  if (self_target) {
    g.self_not_authoritative = !authoritative;
    g.coord.OnReply(ctx_.self, vote, local.ok() ? *local : Object());
  }
  if (g.coord.outcome() != Outcome::kPending) Answer(g);
  MaybeRetire(it);
}

void Reads::Forget(GetIt* it) {
  PendingGet& g = (*it)->second;
  if (g.answered) {
    --answered_;
    answered_bytes_ -= g.answered_bytes;
  }
  ctx_.requests.Close((*it)->first);
  *it = gets_.erase(*it);
}

Reads::GetIt Reads::MaybeRetire(GetIt it) {
  PendingGet& g = it->second;
  if (!g.coord.done() &&
      !(g.answered && (answered_ > ctx_.options.max_inflight ||
                       answered_bytes_ > ctx_.options.max_answered_read_bytes))) {
    return std::next(it);
  }
  RepairAfterGet(g);  // with the replies that did arrive
  Forget(&it);
  return it;
}

void Reads::Answer(PendingGet& g) {
  if (g.answered) return;
  g.answered = true;
  ++answered_;
  for (const Sibling& s : g.coord.merged().siblings) g.answered_bytes += s.value.size();
  answered_bytes_ += g.answered_bytes;
  Status st = g.coord.ToStatus();
  if (g.self_not_authoritative && st.code() == Status::Code::kUnavailable) {
    st = Status::Unavailable(st.message() +
                             " (this node's copy is not authoritative: lost data, repair pending)");
  }
  Object answer = g.coord.merged();
  if (st.ok() && !g.seen.empty()) {
    answer = Merge(answer, g.seen);
    ctx_.recent.CountMerged();
  }
  g.seen = Object();
  ctx_.out.results.push_back({g.client_req, std::move(st), true, std::move(answer),
                              ClientResult::OnCommitFailure::kNotApplied});
}

void Reads::RepairAfterGet(PendingGet& g) {
  if (g.self_not_authoritative && !g.coord.merged().empty()) {
    // The copy here is not in StaleReplicas (it had no vote).
    Status ignored = ctx_.MergeLocally(g.key, g.coord.merged());
    (void)ignored;
  }
  for (const std::string& node : g.coord.StaleReplicas()) {
    if (node == ctx_.self) {
      Status ignored = ctx_.MergeLocally(g.key, g.coord.merged());
      (void)ignored;
    } else {
      ctx_.out.sends.emplace_back(node, ReplicaWrite{0, g.key, g.coord.merged(), ""});
    }
  }
}

void Reads::OnReply(uint64_t req_id, const std::string& from, const ReplicaReadReply& m) {
  auto it = gets_.find(req_id);
  if (it == gets_.end()) return;
  PendingGet& g = it->second;
  Outcome outcome;
  if (m.same) {
    // The replica holds exactly this node's copy; a `same` to a full read is no answer.
    const Object* mine = g.digest_only ? g.coord.ReplyOf(ctx_.self) : nullptr;
    outcome = mine != nullptr && from != ctx_.self ? g.coord.OnReply(from, m.ok, *mine)
                                                   : g.coord.OnReply(from, false, Object());
  } else {
    outcome = g.coord.OnReply(from, m.ok, m.object);
  }
  if (outcome != Outcome::kPending) Answer(g);
  MaybeRetire(it);
}

void Reads::HandleRead(const std::string& from, const ReplicaRead& m) {
  Result<Object> local = handoff_.ReadWithHints(m.key);
  if (m.digest_only && local.ok() && ObjectDigest(*local) == m.digest &&
      ctx_.store.Authoritative(m.key)) {
    ReplicaReadReply same{m.req_id, true, Object(), ""};
    same.same = true;
    ctx_.out.sends.emplace_back(from, std::move(same));
    return;
  }
  if (local.ok() && !ctx_.store.Authoritative(m.key)) {
    // No vote; the object goes along so that the coordinator can still merge it.
    ctx_.out.sends.emplace_back(from, ReplicaReadReply{m.req_id, false, *local,
                                                       "not authoritative for the key's partition "
                                                       "(lost data; repair pending)"});
    return;
  }
  ctx_.out.sends.emplace_back(from, ReplicaReadReply{m.req_id, local.ok(),
                                                     local.ok() ? *local : Object(),
                                                     local.ok() ? "" : local.status().ToString()});
}

void Reads::Tick(int64_t now_ms) {
  for (auto it = gets_.begin(); it != gets_.end();) {
    if (it->second.coord.OnTime(now_ms) != Outcome::kPending) Answer(it->second);
    it = MaybeRetire(it);
  }
}

}  // namespace itsuka::core
