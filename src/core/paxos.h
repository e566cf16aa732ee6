// Per-key Paxos for CONSISTENT operations: ballots, the acceptor's durable state and
// its transitions, one proposer round, and how an operation turns the agreed object
// into the next one.
//
// Design note (Lamport, "Paxos Made Simple", 2001; Rystsov, "CASPaxos: Replicated State
// Machines without logs", 2018; Cassandra's lightweight transactions). Every key is its
// own register whose value is a whole versioned Object. A CONSISTENT operation is one
// single-decree round over the key's PRIMARY replicas (never sloppy substitutes):
//   1. prepare(b) -> each acceptor promises b if b > promised, persists the promise,
//      and answers with its accepted (ballot, object) and its ordinary data object;
//   2. with promises from a majority, the proposer takes the accepted object with the
//      HIGHEST ballot (standard Paxos: it may have been chosen), merges into it the data
//      objects of the promisers (eventual writes, see below), applies the operation
//      (a read, a write or a conditional write) and sends accept(b, next);
//   3. each acceptor accepts if b >= promised and persists (b, next) before answering;
//      with a majority the value is chosen, the operation is answered, and a commit
//      message makes every primary merge `next` into its data object.
// Ballots are (counter, actor) ordered lexicographically; a proposer always first
// promises its own ballot in its own acceptor state (it is a primary), so a restarted
// proposer never reuses a ballot.
//
// What stays out of the data: an accepted value is merged into the data objects (what
// eventual reads see) only when chosen (commit, or a later round re-proposing it), so
// a value accepted by a minority in a failed round never shows up as a sibling.
//
// Dots: strong writes take their dot from the fixed actor kStrongActor, with the
// counter one above what the agreed object's clock holds for it. Chosen objects form a
// chain (each is derived from the previous chosen one, CASPaxos §2.2), so no two chosen
// values share a dot; a failed proposal's dot may be reused by another proposal, but
// the failed one never reaches any data object (previous paragraph), so the DVV rule
// "a dot names one version" holds for everything a reader can see. (docs/DESIGN.md §5.5)
//
// Eventual writes observed (the documented guarantee): a CONSISTENT operation sees
// every eventual write that, before the operation started, was stored by at least
// N - majority + 1 of the key's primaries (with N = 3: PW >= 2), because every
// majority includes one of them and the proposer merges the data objects of the
// majority it heard from. Eventual writes stored by fewer primaries may be seen by a
// later CONSISTENT operation and not by an earlier one; concurrent ones show up as
// siblings.
//
// Compare-and-set: `SET key value CTX token CONSISTENT` applies only if the token's
// clock descends the agreed object's clock, i.e. nothing was written to the key since
// the VGET that returned the token; otherwise it answers nil (not applied).
//
// Pure values and functions; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/ballot.h"
#include "core/messages.h"
#include "core/object.h"
#include "itsuka/status.h"

namespace itsuka::core {

// The actor that names strong writes' dots. Node ids cannot contain '~'.
inline constexpr const char* kStrongActor = "~strong";

std::string ToString(const Ballot& b);

// What an acceptor keeps per key, durably (it must be persisted before any promise
// or accepted message that reflects it leaves the node).
struct AcceptorState {
  Ballot promised;
  Ballot accepted;  // zero: nothing accepted yet
  Object value;     // the accepted object
  friend bool operator==(const AcceptorState&, const AcceptorState&) = default;
};

// Phase 1b. Promises `b` if it is above every ballot promised so far (state changes,
// caller persists). Returns whether promised.
bool AcceptorPrepare(AcceptorState& state, const Ballot& b);
// Phase 2b. Accepts (b, value) unless a higher ballot was promised (state changes,
// caller persists). Returns whether accepted.
bool AcceptorAccept(AcceptorState& state, const Ballot& b, const Object& value);
// Partition transfer (node_core.h, "Moves"): folds another replica's state for the key
// into `state`: the higher promise, and the (accepted, value) pair with the higher
// accepted ballot, taken whole (a ballot is never paired with another ballot's value;
// on a tie, ballots being unique per round, the values are the same and `state` keeps
// its own). Returns whether `state` changed (caller persists).
bool AcceptorMerge(AcceptorState& state, const AcceptorState& other);

// One CONSISTENT operation's effect on the agreed object.
struct StrongOp {
  bool read = true;
  WriteSpec spec;  // writes only; cond and has_context (compare-and-set) apply
};

struct StrongProposal {
  Object next;           // what the round proposes (the base itself for reads and
                         // for writes whose condition did not hold)
  bool applied = false;  // writes: the condition held and `next` holds the new version
};

// Applies `op` to `base` (the object agreed so far, merged with the promisers' data).
// Fails with kSiblings / kTooBig like ordinary writes.
Result<StrongProposal> ProposeNext(const Object& base, StrongOp op, const ObjectLimits& limits);

// One set of nodes whose majority a round needs: a key's preference list under one ring.
struct QuorumGroup {
  std::vector<std::string> members;  // the whole list, reachable or not
  int majority = 0;                  // members.size() / 2 + 1
};

// A proposer's bookkeeping for one ballot: promises, then accepteds, from the key's
// primaries. `acceptors` are the reachable primaries; `majority` counts the key's
// primaries (N/2+1 of the preference list), not the reachable ones.
//
// Joint rounds (a move in flight, docs/DESIGN.md 5.6): with several groups (the key's
// read-ring list and its write-ring list) each phase succeeds only with a majority of
// EVERY group, and fails once some group can no longer reach its majority. An answer
// counts for each group its sender belongs to.
class PaxosRound {
 public:
  enum class Phase { kPrepare, kAccept, kChosen, kFailed };

  PaxosRound(std::vector<std::string> acceptors, int majority, Ballot ballot);
  PaxosRound(std::vector<std::string> acceptors, std::vector<QuorumGroup> groups, Ballot ballot);

  const Ballot& ballot() const { return ballot_; }
  Phase phase() const { return phase_; }
  const std::vector<std::string>& acceptors() const { return acceptors_; }
  // The highest ballot counter any acceptor told us about (to pick the next ballot).
  uint64_t highest_seen() const { return highest_seen_; }

  // A promise (ok) or refusal (!ok, `promised` = what it promised instead). Moves to
  // kAccept with a majority of promises, to kFailed once a majority is impossible.
  Phase OnPromise(const std::string& from, bool ok, const Ballot& promised, const Ballot& accepted,
                  const Object& accepted_value, const Object& data);
  // The object phase 2 starts from: the highest-ballot accepted value among the
  // promises, merged with every promiser's data object. REQUIRES: phase() != kPrepare.
  const Object& base() const { return base_; }
  // Switches to counting accepteds (call after sending accept).
  Phase OnAccepted(const std::string& from, bool ok, const Ballot& promised);
  // Gives up (deadline): kFailed unless already chosen.
  void Fail() {
    if (phase_ != Phase::kChosen) phase_ = Phase::kFailed;
  }

 private:
  bool IsAcceptor(const std::string& node) const;
  void See(const Ballot& b);
  // Whether the answers so far hold a majority of every group (kChosen / kAccept) or
  // leave one group short of it for good (kFailed); otherwise the phase stays.
  enum class Count { kEnough, kImpossible, kOpen };
  Count Tally() const;

  std::vector<std::string> acceptors_;
  std::vector<QuorumGroup> groups_;  // one group (majority over `acceptors`) when not joint
  Ballot ballot_;
  Phase phase_ = Phase::kPrepare;
  std::map<std::string, bool> answers_;  // per phase: who answered, and how
  Ballot best_accepted_;
  Object best_value_;
  Object data_;
  Object base_;
  uint64_t highest_seen_ = 0;
};

}  // namespace itsuka::core
