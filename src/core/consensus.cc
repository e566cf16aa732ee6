#include "core/consensus.h"

#include <algorithm>

#include "common/hash.h"

namespace itsuka::core {

namespace {
constexpr const char* kOtherOwners =
    "the round's owners of the key are not this node's (a move changed them)";

std::string Shortfall(int majority, size_t primaries, size_t reachable) {
  return "need " + std::to_string(majority) + " of the key's " + std::to_string(primaries) +
         " primaries, " + std::to_string(reachable) + " reachable";
}

std::vector<std::string> Union(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
  std::vector<std::string> out = a;
  for (const std::string& n : b) {
    if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
  }
  return out;
}

bool SameSet(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

QuorumGroup GroupOf(const std::vector<std::string>& list) {
  return QuorumGroup{list, static_cast<int>(list.size()) / 2 + 1};
}

// Empty if `acceptors` can give every group its majority; else what is missing.
std::string MissingMajority(const std::vector<QuorumGroup>& groups,
                            const std::vector<std::string>& acceptors) {
  std::string why;
  for (size_t i = 0; i < groups.size(); ++i) {
    const QuorumGroup& g = groups[i];
    size_t reachable = 0;
    for (const std::string& m : g.members) {
      reachable += std::find(acceptors.begin(), acceptors.end(), m) != acceptors.end();
    }
    if (static_cast<int>(reachable) >= g.majority) continue;
    if (groups.size() == 1) return Shortfall(g.majority, g.members.size(), reachable);
    why += (why.empty() ? "" : "; ") + std::string("need ") + std::to_string(g.majority) +
           " of the key's " + std::to_string(g.members.size()) +
           (i == 0 ? " primaries" : " new primaries (a move is in flight)") + ", " +
           std::to_string(reachable) + " reachable";
  }
  return why;
}
}  // namespace

Consensus::RoundOwners Consensus::OwnersOf(const std::string& key) const {
  RoundOwners o;
  o.read = ctx_.Replicas(key);
  o.write = ctx_.WriteReplicas(key);
  o.groups.push_back(GroupOf(o.read));
  // A move in flight for the key: joint majorities of the old and the new owners.
  if (!SameSet(o.read, o.write)) o.groups.push_back(GroupOf(o.write));
  o.all = Union(o.read, o.write);
  o.read_fp = OwnersFingerprint(o.read);
  o.write_fp = OwnersFingerprint(o.write);
  return o;
}

bool Consensus::CountsMe(const std::string& key, uint64_t read_owners,
                         uint64_t write_owners) const {
  // The same configuration as this node's, both lists: a round over the new owners alone
  // is answered only by acceptors that saw the switch too, since a switch one node made
  // can be undone elsewhere (a joining member advanced to up here, made left by a
  // decommission there; membership simulation seed 1221).
  return OwnersFingerprint(ctx_.Replicas(key)) == read_owners &&
         OwnersFingerprint(ctx_.WriteReplicas(key)) == write_owners;
}

bool Consensus::IsOwnerNode(const std::string& key, const std::string& node) const {
  const std::vector<std::string> read = ctx_.Replicas(key), write = ctx_.WriteReplicas(key);
  return std::find(read.begin(), read.end(), node) != read.end() ||
         std::find(write.begin(), write.end(), node) != write.end();
}

// ---- Coordination -----------------------------------------------------------------

void Consensus::Start(uint64_t client_req, const std::string& key, bool read, WriteSpec spec,
                      int64_t now_ms) {
  StrongOp op{read, std::move(spec)};
  std::vector<std::string> replicas = ctx_.Replicas(key);
  // Every operation on a key goes to the same coordinator (its first reachable primary)
  // while the view is stable, so rounds on one key rarely compete.
  auto to = std::find_if(replicas.begin(), replicas.end(),
                         [&](const std::string& n) { return ctx_.IsReachable(n); });
  if (to == replicas.end()) {
    ++stats_.unavailable;
    ctx_.out.results.push_back(
        {client_req,
         Status::Unavailable("need a majority of the key's " + std::to_string(replicas.size()) +
                             " primaries, 0 reachable"),
         true,
         {}});
    return;
  }
  if (*to == ctx_.self) return Coordinate(Origin{client_req, {}, 0}, key, std::move(op), now_ms);
  if (ctx_.at_capacity()) {
    ctx_.out.results.push_back(
        {client_req, Status::Busy("too many requests in flight"), true, {}});
    return;
  }
  ++stats_.forwarded;
  const uint64_t req = forwarder_.Open(client_req, *to, now_ms);
  ctx_.out.sends.emplace_back(*to, ForwardConsistent{req, key, read, std::move(op.spec)});
}

void Consensus::Reply(const Origin& origin, const Status& status, bool applied,
                      const Object& object) {
  if (!status.ok()) {
    (status.code() == Status::Code::kTimeout ? stats_.timeouts : stats_.unavailable)++;
  }
  if (origin.node.empty()) {
    ctx_.out.results.push_back(
        {origin.client_req, status, applied, object, ClientResult::OnCommitFailure::kUnknown});
  } else {
    ctx_.out.sends.emplace_back(
        origin.node, ConsistentResult{origin.remote_req, static_cast<uint32_t>(status.code()),
                                      status.message(), applied, object});
  }
}

void Consensus::Coordinate(Origin origin, const std::string& key, StrongOp op, int64_t now_ms) {
  if (ctx_.at_capacity()) return Reply(origin, Status::Busy("too many requests in flight"), true, {});
  // A key whose partition is moving is coordinated like any other; its rounds count
  // majorities of the old and the new owners (OwnersOf, docs/DESIGN.md 5.6).
  const RoundOwners owners = OwnersOf(key);
  std::vector<std::string> reachable;
  for (const Target& t : ctx_.ReachableTargets(owners.all)) reachable.push_back(t.node);
  if (std::string why = MissingMajority(owners.groups, reachable); !why.empty()) {
    return Reply(origin, Status::Unavailable(why), true, {});
  }
  const uint64_t id = ctx_.requests.Local();
  auto it = ops_.emplace(id, PendingConsistent{}).first;
  PendingConsistent& p = it->second;
  p.origin = std::move(origin);
  p.key = key;
  p.op = std::move(op);
  p.deadline_ms = now_ms + ctx_.options.request_timeout_ms;
  std::deque<uint64_t>& queue = key_queue_[key];
  queue.push_back(id);
  if (queue.size() == 1) StartRound(it, now_ms);
}

void Consensus::EndRound(PendingConsistent& p) {
  if (p.round_req == 0) return;
  rounds_.erase(p.round_req);
  ctx_.requests.Close(p.round_req);
}

void Consensus::StartRound(OpIt it, int64_t now_ms) {
  PendingConsistent& p = it->second;
  EndRound(p);
  // The owners are looked up again for every round (a retry, or the next operation
  // queued on the key): a round started after this node learned of a move counts
  // majorities of both lists, whenever its operation was admitted (5.6, open point 1).
  const RoundOwners owners = OwnersOf(p.key);
  std::vector<std::string> acceptors;
  for (const Target& t : ctx_.ReachableTargets(owners.all)) acceptors.push_back(t.node);
  if (std::string why = MissingMajority(owners.groups, acceptors); !why.empty()) {
    return Fail(it, why, now_ms);
  }
  Result<AcceptorState> state = ctx_.store.ReadPaxos(p.key);
  Result<Object> data = ctx_.store.Read(p.key);
  if (!state.ok() || !data.ok()) {
    return Fail(it, "local storage: " + (state.ok() ? data.status() : state.status()).ToString(),
                now_ms);
  }
  if (!ctx_.store.Authoritative(p.key)) {
    // This node may have forgotten promises and accepts of the key: it proposes, but
    // is no acceptor, so majorities of the others must answer.
    acceptors.erase(std::remove(acceptors.begin(), acceptors.end(), ctx_.self), acceptors.end());
    if (std::string why = MissingMajority(owners.groups, acceptors); !why.empty()) {
      return Fail(it,
                  why + " and authoritative (this node's copy is not: repair pending)",
                  now_ms);
    }
  }
  // Above every ballot this node promised for the key (durable, so a restarted
  // proposer cannot reuse one) and every ballot it heard of.
  Ballot ballot{std::max(state->promised.counter, p.highest_seen) + 1, ctx_.actor};
  AcceptorPrepare(*state, ballot);
  ctx_.store.StagePaxos(p.key, *state);  // durable before the prepares leave
  p.state = PendingConsistent::State::kRound;
  p.round_req = ctx_.requests.Open(Room::kConsensus);
  rounds_[p.round_req] = it->first;
  p.round.emplace(acceptors, owners.groups, ballot);
  p.read_owners = owners.read_fp;
  p.write_owners = owners.write_fp;
  ++stats_.rounds;
  if (owners.groups.size() > 1) ++stats_.joint_rounds;
  for (const std::string& node : acceptors) {
    if (node != ctx_.self) {
      ctx_.out.sends.emplace_back(
          node, PaxosPrepare{p.round_req, p.key, ballot, p.read_owners, p.write_owners});
    }
  }
  if (p.round->OnPromise(ctx_.self, true, ballot, state->accepted, state->value, *data) ==
      PaxosRound::Phase::kAccept) {
    SendAccept(it, now_ms);
  }
}

void Consensus::SendAccept(OpIt it, int64_t now_ms) {
  PendingConsistent& p = it->second;
  Result<StrongProposal> proposal = ProposeNext(p.round->base(), p.op, ctx_.options.limits);
  if (!proposal.ok()) {
    // Nothing of this operation was proposed: not applied.
    return Finish(it, proposal.status(), true, {}, now_ms);
  }
  p.proposal = std::move(proposal).value();
  const Ballot& ballot = p.round->ballot();
  // This node's own vote first, before any accept leaves: if its acceptor refuses (its
  // owners of the key changed since the prepare, R2, or it promised a higher ballot
  // since), the proposal is nowhere yet, so the round is retried (owners looked up
  // again, a ballot above the one seen) instead of being sent to the others and ending
  // in "outcome unknown". A node that is no acceptor of the round (not authoritative)
  // has no vote here.
  const std::vector<std::string>& acceptors = p.round->acceptors();
  const bool votes = std::find(acceptors.begin(), acceptors.end(), ctx_.self) != acceptors.end();
  if (votes) {
    Result<AcceptorState> state = ctx_.store.ReadPaxos(p.key);
    // The acceptor rule applies to this node's own vote too: its owners may have
    // changed since the prepare.
    const bool owners_ok = state.ok() && CountsMe(p.key, p.read_owners, p.write_owners);
    if (!owners_ok || !AcceptorAccept(*state, ballot, p.proposal.next)) {
      if (state.ok() && !owners_ok) ++stats_.refused_owners;
      p.round->OnAccepted(ctx_.self, false, owners_ok ? state->promised : Ballot{});
      p.round->Fail();
      return OnRoundFailed(it, now_ms);
    }
    ctx_.store.StagePaxos(p.key, *state);  // durable before the accepts leave
  }
  if (p.proposal.applied) p.accept_sent = true;
  for (const std::string& node : acceptors) {
    if (node != ctx_.self) {
      ctx_.out.sends.emplace_back(node, PaxosAccept{p.round_req, p.key, ballot, p.proposal.next,
                                                    p.read_owners, p.write_owners});
    }
  }
  if (!votes) return;
  if (p.round->OnAccepted(ctx_.self, true, ballot) == PaxosRound::Phase::kChosen) {
    return OnChosen(it, now_ms);
  }
}

void Consensus::OnRoundFailed(OpIt it, int64_t now_ms) {
  PendingConsistent& p = it->second;
  p.highest_seen = std::max(p.highest_seen, p.round->highest_seen());
  if (p.accept_sent) {
    // Our new version may sit in a minority of acceptors and be chosen by a later
    // round; retrying would apply the write a second time.
    return Fail(it, "a competing proposer interrupted the round", now_ms);
  }
  // Back off, by a different amount on every node, so duelling proposers separate.
  ++p.attempts;
  ++stats_.retries;
  const int64_t backoff =
      5 * std::min(p.attempts, 8) +
      static_cast<int64_t>(Hash64(ctx_.actor + std::to_string(p.attempts)) % 30);
  p.retry_at_ms = now_ms + backoff;
  if (p.retry_at_ms >= p.deadline_ms) {
    return Fail(it, "no majority of promises before the deadline", now_ms);
  }
  EndRound(p);
  p.round.reset();
  p.state = PendingConsistent::State::kBackoff;
}

void Consensus::OnChosen(OpIt it, int64_t now_ms) {
  PendingConsistent& p = it->second;
  const Object& next = p.proposal.next;
  // Every primary merges the chosen object into its data (the eventual read path).
  for (const std::string& node : OwnersOf(p.key).all) {
    if (node != ctx_.self && ctx_.IsReachable(node)) {
      ctx_.out.sends.emplace_back(node, PaxosCommit{p.key, p.round->ballot(), next});
    }
  }
  // Best effort: a later round re-proposes it anyway.
  Status ignored = ctx_.MergeLocally(p.key, next);
  (void)ignored;
  if (ctx_.options.record_writes && p.proposal.applied) RecordWrite(p);
  ++stats_.chosen;
  const bool applied = p.op.read || p.proposal.applied;
  const Object result = next;
  Finish(it, Status::Ok(), applied, result, now_ms);
}

void Consensus::RecordWrite(const PendingConsistent& p) {
  const Object& next = p.proposal.next;
  const Dot dot{kStrongActor, next.clock.Get(kStrongActor)};
  WriteRecord rec{p.key, dot, p.op.spec.has_context ? p.op.spec.context : p.round->base().clock,
                  "", false};
  for (const Sibling& s : next.siblings) {
    if (s.dot == dot) {
      rec.value = s.value;
      rec.tombstone = s.tombstone;
    }
  }
  ctx_.out.writes.push_back(std::move(rec));
}

void Consensus::Fail(OpIt it, const std::string& why, int64_t now_ms) {
  const PendingConsistent& p = it->second;
  Status st =
      p.accept_sent ? Status::Timeout(why + " (outcome unknown)") : Status::Unavailable(why);
  Finish(it, st, true, {}, now_ms);
}

void Consensus::Finish(OpIt it, const Status& status, bool applied, const Object& object,
                       int64_t now_ms) {
  PendingConsistent& p = it->second;
  Reply(p.origin, status, applied, object);
  const std::string key = p.key;
  EndRound(p);
  auto q = key_queue_.find(key);
  if (q != key_queue_.end()) {
    std::deque<uint64_t>& queue = q->second;
    const bool was_running = !queue.empty() && queue.front() == it->first;
    queue.erase(std::remove(queue.begin(), queue.end(), it->first), queue.end());
    ops_.erase(it);
    if (queue.empty()) {
      key_queue_.erase(q);
    } else if (was_running) {
      auto next = ops_.find(queue.front());
      if (next != ops_.end()) StartRound(next, now_ms);
    }
    return;
  }
  ops_.erase(it);
}

void Consensus::Tick(int64_t now_ms) {
  for (auto it = ops_.begin(); it != ops_.end();) {
    const uint64_t id = it->first;
    PendingConsistent& p = it->second;
    if (now_ms >= p.deadline_ms) {
      if (p.round) p.round->Fail();
      const char* why = p.state == PendingConsistent::State::kQueued
                            ? "queued behind other operations on the key until the deadline"
                        : p.accept_sent ? "no majority accepted before the deadline"
                                        : "no majority answered before the deadline";
      Fail(it, why, now_ms);
    } else if (p.state == PendingConsistent::State::kBackoff && now_ms >= p.retry_at_ms) {
      StartRound(it, now_ms);
    }
    // Finishing may start (never erase) other operations: continue after `id`.
    it = ops_.upper_bound(id);
  }
}

// ---- Acceptor -----------------------------------------------------------------------

void Consensus::HandlePrepare(const std::string& from, const PaxosPrepare& m) {
  PaxosPromise reply;
  reply.req_id = m.req_id;
  auto refuse = [&](std::string error) {
    reply.error = std::move(error);
    ctx_.out.sends.emplace_back(from, std::move(reply));
  };
  if (!ctx_.IsOwner(m.key)) return refuse("not a primary replica of the key");
  Result<AcceptorState> state = ctx_.store.ReadPaxos(m.key);
  Result<Object> data = ctx_.store.Read(m.key);
  if (!state.ok() || !data.ok()) {
    return refuse((state.ok() ? data.status() : state.status()).ToString());
  }
  if (!ctx_.store.Authoritative(m.key)) {
    return refuse("not authoritative for the key's partition (lost data; repair pending)");
  }
  if (!CountsMe(m.key, m.read_owners, m.write_owners)) {
    ++stats_.refused_owners;
    return refuse(kOtherOwners);
  }
  reply.ok = AcceptorPrepare(*state, m.ballot);
  reply.promised = state->promised;
  if (reply.ok) {
    ctx_.store.StagePaxos(m.key, *state);  // committed before the promise is sent
    reply.accepted = state->accepted;
    reply.value = std::move(state->value);
    reply.data = std::move(data).value();
  }
  ctx_.out.sends.emplace_back(from, std::move(reply));
}

void Consensus::HandleAccept(const std::string& from, const PaxosAccept& m) {
  PaxosAccepted reply;
  reply.req_id = m.req_id;
  auto refuse = [&](std::string error) {
    reply.error = std::move(error);
    ctx_.out.sends.emplace_back(from, std::move(reply));
  };
  if (!ctx_.IsOwner(m.key)) return refuse("not a primary replica of the key");
  Result<AcceptorState> state = ctx_.store.ReadPaxos(m.key);
  if (!state.ok()) return refuse(state.status().ToString());
  if (!ctx_.store.Authoritative(m.key)) {
    return refuse("not authoritative for the key's partition (lost data; repair pending)");
  }
  if (!CountsMe(m.key, m.read_owners, m.write_owners)) {
    ++stats_.refused_owners;
    return refuse(kOtherOwners);
  }
  reply.ok = AcceptorAccept(*state, m.ballot, m.object);
  reply.promised = state->promised;  // on success: the ballot accepted, which the proposer checks
  if (reply.ok) ctx_.store.StagePaxos(m.key, std::move(state).value());
  ctx_.out.sends.emplace_back(from, std::move(reply));
}

void Consensus::HandleCommit(const PaxosCommit& m) {
  if (!ctx_.IsOwner(m.key)) return;
  // A later round re-proposes what a failed merge missed.
  Status ignored = ctx_.MergeLocally(m.key, m.object);
  (void)ignored;
}

// ---- Proposer replies -------------------------------------------------------------

std::optional<Consensus::OpIt> Consensus::RoundOf(uint64_t req_id) {
  auto r = rounds_.find(req_id);
  if (r == rounds_.end()) return std::nullopt;
  auto it = ops_.find(r->second);
  if (it == ops_.end() || !it->second.round) return std::nullopt;
  return it;
}

void Consensus::OnPromise(uint64_t req_id, const std::string& from, const PaxosPromise& m,
                          int64_t now_ms) {
  std::optional<OpIt> it = RoundOf(req_id);
  if (!it) return;
  PaxosRound& round = *(*it)->second.round;
  const PaxosRound::Phase before = round.phase();
  // Only a current owner of the key (read-ring or write-ring list, in this node's view,
  // now) votes: a round planned before the ring moved counts no vote of a node that no
  // longer holds the key, and a joint round counts its receivers' votes (they are in the
  // new owners' group only; counting read-ring primaries alone left a joint round with
  // an old owner down unable to reach a majority of the new owners).
  const bool votes = m.ok && m.error.empty() && IsOwnerNode((*it)->second.key, from);
  PaxosRound::Phase phase = round.OnPromise(from, votes, m.promised, m.accepted, m.value, m.data);
  if (before == PaxosRound::Phase::kPrepare && phase == PaxosRound::Phase::kAccept) {
    return SendAccept(*it, now_ms);
  }
  if (phase == PaxosRound::Phase::kFailed) OnRoundFailed(*it, now_ms);
}

void Consensus::OnAccepted(uint64_t req_id, const std::string& from, const PaxosAccepted& m,
                           int64_t now_ms) {
  std::optional<OpIt> it = RoundOf(req_id);
  if (!it) return;
  PaxosRound& round = *(*it)->second.round;
  if (round.phase() != PaxosRound::Phase::kAccept) return;
  const bool votes = m.ok && m.error.empty() && IsOwnerNode((*it)->second.key, from);
  PaxosRound::Phase phase = round.OnAccepted(from, votes, m.promised);
  if (phase == PaxosRound::Phase::kChosen) return OnChosen(*it, now_ms);
  if (phase == PaxosRound::Phase::kFailed) OnRoundFailed(*it, now_ms);
}

// ---- Forwarding -------------------------------------------------------------------

void Consensus::HandleForward(const std::string& from, const ForwardConsistent& m,
                              int64_t now_ms) {
  Origin origin{0, from, m.req_id};
  if (!ctx_.IsPrimary(m.key)) {
    return Reply(origin, Status::Unavailable("forwarded to a node that is not a primary"), true, {});
  }
  Coordinate(origin, m.key, StrongOp{m.read, m.spec}, now_ms);
}

}  // namespace itsuka::core
