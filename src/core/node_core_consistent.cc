// NodeCore's CONSISTENT path: per-key Paxos rounds over the key's primaries
// (core/paxos.h has the design note). One operation per key runs at a time on a
// coordinator; the others queue behind it, so a coordinator never duels with itself.
#include <algorithm>

#include "common/hash.h"
#include "core/node_core.h"

namespace itsuka::core {

bool NodeCore::IsPrimary(const std::string& key) const {
  std::vector<std::string> replicas = Replicas(key);
  return std::find(replicas.begin(), replicas.end(), self_) != replicas.end();
}

void NodeCore::StartConsistent(uint64_t client_req, const std::string& key, bool read,
                               WriteSpec spec, int64_t now_ms) {
  StrongOp op{read, std::move(spec)};
  std::vector<std::string> replicas = Replicas(key);
  // Every operation on a key goes to the same coordinator (its first reachable primary)
  // while the view is stable, so rounds on one key rarely compete.
  auto to = std::find_if(replicas.begin(), replicas.end(),
                         [&](const std::string& n) { return IsReachable(n); });
  if (to == replicas.end()) {
    ++consistent_stats_.unavailable;
    out_.results.push_back(
        {client_req,
         Status::Unavailable("need a majority of the key's " + std::to_string(replicas.size()) +
                             " primaries, 0 reachable"),
         true,
         {}});
    return;
  }
  if (*to == self_) {
    return CoordinateConsistent(Origin{client_req, {}, 0}, key, std::move(op), now_ms);
  }
  if (AtCapacity()) {
    out_.results.push_back({client_req, Status::Busy("too many requests in flight"), true, {}});
    return;
  }
  ++consistent_stats_.forwarded;
  const uint64_t req = next_req_++;
  forwards_.emplace(req, PendingForward{client_req, *to, now_ms + options_.request_timeout_ms});
  out_.sends.emplace_back(*to, ForwardConsistent{req, key, read, std::move(op.spec)});
}

void NodeCore::ReplyConsistent(const Origin& origin, const Status& status, bool applied,
                               const Object& object) {
  if (!status.ok()) {
    (status.code() == Status::Code::kTimeout ? consistent_stats_.timeouts
                                             : consistent_stats_.unavailable)++;
  }
  if (origin.node.empty()) {
    out_.results.push_back(
        {origin.client_req, status, applied, object, ClientResult::OnCommitFailure::kUnknown});
  } else {
    out_.sends.emplace_back(
        origin.node, ConsistentResult{origin.remote_req, static_cast<uint32_t>(status.code()),
                                      status.message(), applied, object});
  }
}

void NodeCore::CoordinateConsistent(Origin origin, const std::string& key, StrongOp op,
                                    int64_t now_ms) {
  if (AtCapacity()) {
    return ReplyConsistent(origin, Status::Busy("too many requests in flight"), true, {});
  }
  if (!PendingReplicas(key).empty()) {
    // The key's primaries are changing (a join or a decommission is copying its
    // partition). Paxos has no reconfiguration here, so a majority of the old owners and
    // one of the new ones need not intersect: refuse rather than risk a stale answer.
    return ReplyConsistent(origin,
                           Status::Unavailable("the key's partition is moving to new replicas; retry when the move is done"),
                           true, {});
  }
  std::vector<std::string> replicas = Replicas(key);
  const int majority = static_cast<int>(replicas.size()) / 2 + 1;
  const int reachable = static_cast<int>(ReachableTargets(replicas).size());
  if (reachable < majority) {
    return ReplyConsistent(
        origin,
        Status::Unavailable("need " + std::to_string(majority) + " of the key's " +
                            std::to_string(replicas.size()) + " primaries, " +
                            std::to_string(reachable) + " reachable"),
        true, {});
  }
  const uint64_t id = next_req_++;
  auto it = consistent_.emplace(id, PendingConsistent{}).first;
  PendingConsistent& p = it->second;
  p.origin = std::move(origin);
  p.key = key;
  p.op = std::move(op);
  p.deadline_ms = now_ms + options_.request_timeout_ms;
  std::deque<uint64_t>& queue = key_queue_[key];
  queue.push_back(id);
  if (queue.size() == 1) StartRound(it, now_ms);
}

void NodeCore::StartRound(ConsistentIt it, int64_t now_ms) {
  PendingConsistent& p = it->second;
  if (p.round_req != 0) rounds_.erase(p.round_req);
  std::vector<std::string> replicas = Replicas(p.key);
  const int majority = static_cast<int>(replicas.size()) / 2 + 1;
  std::vector<std::string> acceptors;
  for (const Target& t : ReachableTargets(replicas)) acceptors.push_back(t.node);
  if (static_cast<int>(acceptors.size()) < majority) {
    return FailConsistent(it,
                          "need " + std::to_string(majority) + " of the key's " +
                              std::to_string(replicas.size()) + " primaries, " +
                              std::to_string(acceptors.size()) + " reachable",
                          now_ms);
  }
  Result<AcceptorState> state = store_.ReadPaxos(p.key);
  Result<Object> data = store_.Read(p.key);
  if (!state.ok() || !data.ok()) {
    return FailConsistent(
        it, "local storage: " + (state.ok() ? data.status() : state.status()).ToString(), now_ms);
  }
  if (!store_.Authoritative(p.key)) {
    // This node may have forgotten promises and accepts of the key: it proposes, but
    // is no acceptor, so a majority of the others must answer.
    acceptors.erase(std::remove(acceptors.begin(), acceptors.end(), self_), acceptors.end());
    if (static_cast<int>(acceptors.size()) < majority) {
      return FailConsistent(it,
                            "need " + std::to_string(majority) + " of the key's " +
                                std::to_string(replicas.size()) + " primaries, " +
                                std::to_string(acceptors.size()) +
                                " reachable and authoritative (this node's copy is not: repair pending)",
                            now_ms);
    }
  }
  // Above every ballot this node promised for the key (durable, so a restarted
  // proposer cannot reuse one) and every ballot it heard of.
  Ballot ballot{std::max(state->promised.counter, p.highest_seen) + 1, actor_};
  AcceptorPrepare(*state, ballot);
  store_.StagePaxos(p.key, *state);  // durable before the prepares leave
  p.state = PendingConsistent::State::kRound;
  p.round_req = next_req_++;
  rounds_[p.round_req] = it->first;
  p.round.emplace(acceptors, majority, ballot);
  ++consistent_stats_.rounds;
  for (const std::string& node : acceptors) {
    if (node != self_) out_.sends.emplace_back(node, PaxosPrepare{p.round_req, p.key, ballot});
  }
  if (p.round->OnPromise(self_, true, ballot, state->accepted, state->value, *data) ==
      PaxosRound::Phase::kAccept) {
    SendAccept(it, now_ms);
  }
}

void NodeCore::SendAccept(ConsistentIt it, int64_t now_ms) {
  PendingConsistent& p = it->second;
  Result<StrongProposal> proposal = ProposeNext(p.round->base(), p.op, options_.limits);
  if (!proposal.ok()) {
    // Nothing of this operation was proposed: not applied.
    return FinishConsistent(it, proposal.status(), true, {}, now_ms);
  }
  p.proposal = std::move(proposal).value();
  if (p.proposal.applied) p.accept_sent = true;
  const Ballot& ballot = p.round->ballot();
  for (const std::string& node : p.round->acceptors()) {
    if (node != self_) {
      out_.sends.emplace_back(node, PaxosAccept{p.round_req, p.key, ballot, p.proposal.next});
    }
  }
  Result<AcceptorState> state = store_.ReadPaxos(p.key);
  PaxosRound::Phase phase;
  if (!state.ok()) {
    phase = p.round->OnAccepted(self_, false, Ballot{});
  } else if (AcceptorAccept(*state, ballot, p.proposal.next)) {
    store_.StagePaxos(p.key, *state);
    phase = p.round->OnAccepted(self_, true, ballot);
  } else {
    phase = p.round->OnAccepted(self_, false, state->promised);
  }
  if (phase == PaxosRound::Phase::kChosen) return OnChosen(it, now_ms);
  if (phase == PaxosRound::Phase::kFailed) return OnRoundFailed(it, now_ms);
}

void NodeCore::OnRoundFailed(ConsistentIt it, int64_t now_ms) {
  PendingConsistent& p = it->second;
  p.highest_seen = std::max(p.highest_seen, p.round->highest_seen());
  if (p.accept_sent) {
    // Our new version may sit in a minority of acceptors and be chosen by a later
    // round; retrying would apply the write a second time.
    return FailConsistent(it, "a competing proposer interrupted the round", now_ms);
  }
  // Back off, by a different amount on every node, so duelling proposers separate.
  ++p.attempts;
  ++consistent_stats_.retries;
  const int64_t backoff = 5 * std::min(p.attempts, 8) +
                          static_cast<int64_t>(Hash64(actor_ + std::to_string(p.attempts)) % 30);
  p.retry_at_ms = now_ms + backoff;
  if (p.retry_at_ms >= p.deadline_ms) {
    return FailConsistent(it, "no majority of promises before the deadline", now_ms);
  }
  rounds_.erase(p.round_req);
  p.round.reset();
  p.state = PendingConsistent::State::kBackoff;
}

void NodeCore::OnChosen(ConsistentIt it, int64_t now_ms) {
  PendingConsistent& p = it->second;
  const Object& next = p.proposal.next;
  // Every primary merges the chosen object into its data (the eventual read path).
  for (const std::string& node : Replicas(p.key)) {
    if (node != self_ && IsReachable(node)) {
      out_.sends.emplace_back(node, PaxosCommit{p.key, p.round->ballot(), next});
    }
  }
  Status st;
  MergeLocally(p.key, next, &st);  // best effort: a later round re-proposes it anyway
  if (options_.record_writes && p.proposal.applied) {
    const Dot dot{kStrongActor, next.clock.Get(kStrongActor)};
    WriteRecord rec{p.key, dot, p.op.spec.has_context ? p.op.spec.context : p.round->base().clock,
                    "", false};
    for (const Sibling& s : next.siblings) {
      if (s.dot == dot) {
        rec.value = s.value;
        rec.tombstone = s.tombstone;
      }
    }
    out_.writes.push_back(std::move(rec));
  }
  ++consistent_stats_.chosen;
  const bool applied = p.op.read || p.proposal.applied;
  const Object result = next;
  FinishConsistent(it, Status::Ok(), applied, result, now_ms);
}

void NodeCore::FailConsistent(ConsistentIt it, const std::string& why, int64_t now_ms) {
  const PendingConsistent& p = it->second;
  Status st =
      p.accept_sent ? Status::Timeout(why + " (outcome unknown)") : Status::Unavailable(why);
  FinishConsistent(it, st, true, {}, now_ms);
}

void NodeCore::FinishConsistent(ConsistentIt it, const Status& status, bool applied,
                                const Object& object, int64_t now_ms) {
  PendingConsistent& p = it->second;
  ReplyConsistent(p.origin, status, applied, object);
  const std::string key = p.key;
  if (p.round_req != 0) rounds_.erase(p.round_req);
  auto q = key_queue_.find(key);
  if (q != key_queue_.end()) {
    std::deque<uint64_t>& queue = q->second;
    const bool was_running = !queue.empty() && queue.front() == it->first;
    queue.erase(std::remove(queue.begin(), queue.end(), it->first), queue.end());
    consistent_.erase(it);
    if (queue.empty()) {
      key_queue_.erase(q);
    } else if (was_running) {
      auto next = consistent_.find(queue.front());
      if (next != consistent_.end()) StartRound(next, now_ms);
    }
    return;
  }
  consistent_.erase(it);
}

void NodeCore::TickConsistent(int64_t now_ms) {
  for (auto it = consistent_.begin(); it != consistent_.end();) {
    const uint64_t id = it->first;
    PendingConsistent& p = it->second;
    if (now_ms >= p.deadline_ms) {
      if (p.round) p.round->Fail();
      const char* why = p.state == PendingConsistent::State::kQueued
                            ? "queued behind other operations on the key until the deadline"
                        : p.accept_sent ? "no majority accepted before the deadline"
                                        : "no majority answered before the deadline";
      FailConsistent(it, why, now_ms);
    } else if (p.state == PendingConsistent::State::kBackoff && now_ms >= p.retry_at_ms) {
      StartRound(it, now_ms);
    }
    // Finishing may start (never erase) other operations: continue after `id`.
    it = consistent_.upper_bound(id);
  }
}

// ---- Acceptor -----------------------------------------------------------------------

void NodeCore::HandlePaxosPrepare(const std::string& from, const PaxosPrepare& m) {
  PaxosPromise reply;
  reply.req_id = m.req_id;
  if (!IsPrimary(m.key)) {
    reply.error = "not a primary replica of the key";
    out_.sends.emplace_back(from, std::move(reply));
    return;
  }
  Result<AcceptorState> state = store_.ReadPaxos(m.key);
  Result<Object> data = store_.Read(m.key);
  if (!state.ok() || !data.ok()) {
    reply.error = (state.ok() ? data.status() : state.status()).ToString();
    out_.sends.emplace_back(from, std::move(reply));
    return;
  }
  if (!store_.Authoritative(m.key)) {
    reply.error = "not authoritative for the key's partition (lost data; repair pending)";
    out_.sends.emplace_back(from, std::move(reply));
    return;
  }
  reply.ok = AcceptorPrepare(*state, m.ballot);
  reply.promised = state->promised;
  if (reply.ok) {
    store_.StagePaxos(m.key, *state);  // committed before the promise is sent
    reply.accepted = state->accepted;
    reply.value = std::move(state->value);
    reply.data = std::move(data).value();
  }
  out_.sends.emplace_back(from, std::move(reply));
}

void NodeCore::HandlePaxosAccept(const std::string& from, const PaxosAccept& m) {
  PaxosAccepted reply;
  reply.req_id = m.req_id;
  if (!IsPrimary(m.key)) {
    reply.error = "not a primary replica of the key";
    out_.sends.emplace_back(from, std::move(reply));
    return;
  }
  Result<AcceptorState> state = store_.ReadPaxos(m.key);
  if (!state.ok()) {
    reply.error = state.status().ToString();
    out_.sends.emplace_back(from, std::move(reply));
    return;
  }
  if (!store_.Authoritative(m.key)) {
    reply.error = "not authoritative for the key's partition (lost data; repair pending)";
    out_.sends.emplace_back(from, std::move(reply));
    return;
  }
  reply.ok = AcceptorAccept(*state, m.ballot, m.object);
  reply.promised = state->promised;  // on success: the ballot accepted, which the proposer checks
  if (reply.ok) store_.StagePaxos(m.key, std::move(state).value());
  out_.sends.emplace_back(from, std::move(reply));
}

void NodeCore::HandlePaxosCommit(const PaxosCommit& m) {
  if (!IsPrimary(m.key)) return;
  Status ignored;  // a later round re-proposes what a failed merge missed
  MergeLocally(m.key, m.object, &ignored);
}

// ---- Proposer replies -------------------------------------------------------------

void NodeCore::HandlePaxosPromise(const std::string& from, const PaxosPromise& m, int64_t now_ms) {
  auto r = rounds_.find(m.req_id);
  if (r == rounds_.end()) return;
  auto it = consistent_.find(r->second);
  if (it == consistent_.end() || !it->second.round) return;
  const PaxosRound::Phase before = it->second.round->phase();
  PaxosRound::Phase phase = it->second.round->OnPromise(from, m.ok && m.error.empty(), m.promised,
                                                        m.accepted, m.value, m.data);
  if (before == PaxosRound::Phase::kPrepare && phase == PaxosRound::Phase::kAccept) {
    return SendAccept(it, now_ms);
  }
  if (phase == PaxosRound::Phase::kFailed) OnRoundFailed(it, now_ms);
}

void NodeCore::HandlePaxosAccepted(const std::string& from, const PaxosAccepted& m,
                                   int64_t now_ms) {
  auto r = rounds_.find(m.req_id);
  if (r == rounds_.end()) return;
  auto it = consistent_.find(r->second);
  if (it == consistent_.end() || !it->second.round) return;
  if (it->second.round->phase() != PaxosRound::Phase::kAccept) return;
  PaxosRound::Phase phase = it->second.round->OnAccepted(from, m.ok && m.error.empty(), m.promised);
  if (phase == PaxosRound::Phase::kChosen) return OnChosen(it, now_ms);
  if (phase == PaxosRound::Phase::kFailed) OnRoundFailed(it, now_ms);
}

// ---- Forwarding -------------------------------------------------------------------

void NodeCore::HandleForwardConsistent(const std::string& from, const ForwardConsistent& m,
                                       int64_t now_ms) {
  Origin origin{0, from, m.req_id};
  if (!IsPrimary(m.key)) {
    return ReplyConsistent(origin, Status::Unavailable("forwarded to a node that is not a primary"),
                           true, {});
  }
  CoordinateConsistent(origin, m.key, StrongOp{m.read, m.spec}, now_ms);
}

void NodeCore::HandleConsistentResult(const ConsistentResult& m) {
  auto it = forwards_.find(m.req_id);
  if (it == forwards_.end()) return;
  const Status st = Status::FromCode(static_cast<Status::Code>(m.code), m.message);
  out_.results.push_back({it->second.client_req, st, m.applied, m.object});
  forwards_.erase(it);
}

}  // namespace itsuka::core
