#include "core/paxos.h"

#include <algorithm>

namespace itsuka::core {

bool AcceptorPrepare(AcceptorState& state, const Ballot& b) {
  // Equal is a repeated prepare from the same proposer round (ballots are unique per
  // round), answered the same way.
  if (b < state.promised) return false;
  state.promised = b;
  return true;
}

bool AcceptorAccept(AcceptorState& state, const Ballot& b, const Object& value) {
  if (b < state.promised) return false;
  state.promised = b;
  state.accepted = b;
  state.value = value;
  return true;
}

bool AcceptorMerge(AcceptorState& state, const AcceptorState& other) {
  bool changed = false;
  if (other.promised > state.promised) {
    state.promised = other.promised;
    changed = true;
  }
  if (other.accepted > state.accepted) {
    state.accepted = other.accepted;
    state.value = other.value;
    changed = true;
  }
  if (state.accepted > state.promised) {  // only from a malformed peer: keep promised >= accepted
    state.promised = state.accepted;
    changed = true;
  }
  return changed;
}

Result<StrongProposal> ProposeNext(const Object& base, StrongOp op, const ObjectLimits& limits) {
  StrongProposal p{base, false};
  if (op.read) return p;
  WriteSpec& spec = op.spec;
  std::vector<const Sibling*> live = LiveSiblings(base, spec.version.written_at_ms);
  using Cond = WriteSpec::Cond;
  if ((spec.cond == Cond::kNx && !live.empty()) ||
      ((spec.cond == Cond::kXx || spec.cond == Cond::kIfLive) && live.empty())) {
    return p;
  }
  // Compare-and-set: the token must have seen everything the key holds now.
  if (spec.has_context && !spec.context.Descends(base.clock)) return p;
  if (spec.keep_ttl && live.size() == 1) spec.version.expire_at_ms = live[0]->expire_at_ms;
  const VClock context = spec.has_context ? spec.context : base.clock;
  // A CONSISTENT increment: the shard of kStrongActor, whose dots are unique (DESIGN 5.5).
  int64_t delta = 0;
  const bool increment = spec.cond == Cond::kIncrement;
  if (increment && !ParseCounterDelta(spec.version.value, &delta)) {
    return Status::InvalidArgument("bad counter increment");
  }
  Result<Object> next = ApplyWrite(base, context, kStrongActor, std::move(spec.version), limits,
                                   increment ? &delta : nullptr);
  if (!next.ok()) return next.status();
  p.next = std::move(next).value();
  p.applied = true;
  return p;
}

PaxosRound::PaxosRound(std::vector<std::string> acceptors, int majority, Ballot ballot)
    : acceptors_(std::move(acceptors)), ballot_(std::move(ballot)) {
  // One group: every acceptor belongs to it; the majority is of the whole list, which
  // the caller counted (the unreachable primaries are not in `acceptors`).
  groups_.push_back(QuorumGroup{acceptors_, majority});
}

PaxosRound::PaxosRound(std::vector<std::string> acceptors, std::vector<QuorumGroup> groups,
                       Ballot ballot)
    : acceptors_(std::move(acceptors)), groups_(std::move(groups)), ballot_(std::move(ballot)) {}

PaxosRound::Count PaxosRound::Tally() const {
  bool all_enough = true;
  for (const QuorumGroup& g : groups_) {
    int yes = 0, no = 0, reachable = 0;
    for (const std::string& m : g.members) {
      if (!IsAcceptor(m)) continue;
      ++reachable;
      auto a = answers_.find(m);
      if (a != answers_.end()) (a->second ? yes : no)++;
    }
    if (reachable - no < g.majority) return Count::kImpossible;
    if (yes < g.majority) all_enough = false;
  }
  return all_enough ? Count::kEnough : Count::kOpen;
}

bool PaxosRound::IsAcceptor(const std::string& node) const {
  return std::find(acceptors_.begin(), acceptors_.end(), node) != acceptors_.end();
}

void PaxosRound::See(const Ballot& b) { highest_seen_ = std::max(highest_seen_, b.counter); }

PaxosRound::Phase PaxosRound::OnPromise(const std::string& from, bool ok, const Ballot& promised,
                                        const Ballot& accepted, const Object& accepted_value,
                                        const Object& data) {
  if (phase_ != Phase::kPrepare || !IsAcceptor(from) || answers_.count(from)) return phase_;
  // A promise for another ballot is not one for ours (a confused or stale peer).
  if (ok && promised != ballot_) ok = false;
  answers_[from] = ok;
  See(promised);
  See(accepted);
  if (ok) {
    if (accepted > best_accepted_) {
      best_accepted_ = accepted;
      best_value_ = accepted_value;
    }
    data_ = Merge(data_, data);
  }
  const Count count = Tally();
  if (count == Count::kEnough) {
    // Standard Paxos: the highest-ballot accepted value may have been chosen, so it is
    // the one to build on; only chosen values are in the data objects, so merging them
    // brings in eventual writes without resurrecting a failed proposal.
    base_ = Merge(best_value_, data_);
    answers_.clear();
    phase_ = Phase::kAccept;
  } else if (count == Count::kImpossible) {
    phase_ = Phase::kFailed;
  }
  return phase_;
}

PaxosRound::Phase PaxosRound::OnAccepted(const std::string& from, bool ok, const Ballot& promised) {
  if (phase_ != Phase::kAccept || !IsAcceptor(from) || answers_.count(from)) return phase_;
  if (ok && promised != ballot_) ok = false;  // an accept of another ballot is not ours
  answers_[from] = ok;
  See(promised);
  const Count count = Tally();
  if (count == Count::kEnough) {
    phase_ = Phase::kChosen;
  } else if (count == Count::kImpossible) {
    phase_ = Phase::kFailed;
  }
  return phase_;
}

std::string ToString(const Ballot& b) { return std::to_string(b.counter) + "." + b.node; }

}  // namespace itsuka::core
