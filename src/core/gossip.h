// Gossip membership: every node's view of who is in the cluster, and how views merge.
//
// Design note (Dynamo §4.8; Cassandra's gossiper: heartbeat generation + version per
// endpoint; SWIM's incarnation refutation; Riak's claimant-free ring transitions). Each
// node keeps a View: one MemberState per member ever seen (members that left stay as
// kLeft tombstones, so an old message cannot bring them back). Every interval a node
// sends its whole view to one random peer, which merges it and answers with its own
// merged view (push-pull), so a change reaches everyone in O(log M) rounds.
//
// A member's state is two independent registers, each merged by "the higher version
// wins, ties broken by a total order of the content", so Merge is commutative,
// associative and idempotent (a join-semilattice, as a state-based CRDT needs):
//   - liveness (addresses, heartbeat, seen, synced): written only by the member itself.
//     Ordered by (incarnation, heartbeat). A node bumps its incarnation when it
//     restarts and whenever it sees a record of itself from its own future (a
//     restarted node that lost its incarnation refutes it, as in SWIM).
//   - ownership (status): written by the member (join, bootstrap) and by operators on
//     any node (leave, decommission) and by any node completing a transition. Ordered
//     by (ownership version, status). Keeping it apart from the incarnation means a
//     restart cannot undo an operator's decommission.
//
// Ownership moves in two rings derived from a view (see ReadMembers/WriteMembers):
// the read ring is who holds data now (up, leaving); the write ring is who will hold it
// (joining, up). While they differ, writes go to both preference lists and reads to the
// read ring. Every member publishes `seen` = the fingerprint of the write ring it knows
// of; a node starts transferring the partitions it gains only once every member that may
// coordinate writes has seen that ring (MoveVisible), so no write acknowledged by a
// node with an older view can slip past the transfer (Cassandra's bootstrap waits out its
// ring delay for the same reason). A member whose write-ring partitions are all transferred
// publishes `synced` = that fingerprint; Advance then turns joining members into up and
// leaving members into left once every write-ring member is synced.
//
// Pure, deterministic, thread-compatible. Randomness comes in as a generator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/ring.h"

namespace itsuka::core {

enum class MemberStatus : uint8_t { kJoining = 0, kUp = 1, kLeaving = 2, kLeft = 3 };
const char* MemberStatusName(MemberStatus s);

struct MemberState {
  std::string id;
  // Liveness register (owned by the member).
  uint64_t incarnation = 0;
  uint64_t heartbeat = 0;
  std::string client_addr;  // "host:port" clients use
  std::string peer_addr;    // "host:port" peers connect to
  uint64_t synced = 0;      // WriteFingerprint this member finished transferring data for
  uint64_t seen = 0;        // WriteFingerprint of this member's own view
  // Ownership register.
  uint64_t version = 0;
  MemberStatus status = MemberStatus::kJoining;
  friend bool operator==(const MemberState&, const MemberState&) = default;
};

using View = std::map<std::string, MemberState>;

// The merge of two states of the same member (commutative, associative, idempotent).
MemberState MergeMember(const MemberState& a, const MemberState& b);
// Merges `incoming` into `*view`; true if anything changed.
bool MergeView(View* view, const View& incoming);

// Members that hold data now (up, leaving) / will hold it (joining, up).
std::vector<std::string> ReadMembers(const View& view);
std::vector<std::string> WriteMembers(const View& view);
// Identifies a write-ring member set and the leaving members (0: empty write ring).
uint64_t WriteFingerprint(const View& view);
// Sum of every member's ownership version: increases whenever the rings may change.
uint64_t OwnershipVersion(const View& view);

// Whether every member that may coordinate a write knows the view's write ring: every
// joining and up member has seen it, and so has every leaving member `reachable` says is
// reachable (a leaving node that is down must not hold its own departure up).
bool MoveVisible(const View& view, const std::function<bool(const std::string&)>& reachable);

// Which partitions `self` must transfer, and from whom, to own its write-ring partitions:
// source node -> partitions. Those are the partitions whose write-ring preference list
// has `self` and whose read-ring preference list does not; every node of the latter is
// a source (a quorum write is on at least W of them).
std::map<std::string, std::set<uint32_t>> TransferPlan(const Ring& read, const Ring& write,
                                                       const std::string& self, size_t n);

class Gossiper {
 public:
  // `seeds` are the ids from cluster.seeds: until each of them has been heard from, a
  // fresh node does not bootstrap a new cluster on its own.
  Gossiper(MemberState self, std::vector<std::string> seeds);

  const View& view() const { return view_; }
  const MemberState& self() const { return view_.at(self_id_); }
  // Restores a persisted view (the member's own entry is kept from the constructor,
  // with an incarnation above any the persisted view holds).
  void Restore(const View& persisted);

  // Once per gossip interval: bumps the heartbeat, applies transitions, and returns the
  // peer to gossip with (empty if none), chosen uniformly from the members that are not
  // left and the seeds not yet heard from.
  std::string Round(std::mt19937_64& rng);
  // Merges a peer's view; true if the view changed.
  bool Receive(const View& incoming);
  // Records that this node copied everything for write ring `fingerprint`.
  void SetSynced(uint64_t fingerprint);
  // Operator actions (any node): start a member's leave. False if unknown or gone.
  // An up member becomes leaving (one ownership version bump). So does a joining one,
  // with two bumps (joining -> up -> leaving), never left at once: Advance may already
  // have made it up elsewhere, and an up member leaves only through leaving, whose
  // transfers move its data and acceptor state to the remaining owners. The two bumps
  // win over an up elsewhere and tie with another operator's Leave made there.
  bool Leave(const std::string& id);
  // Applies the deterministic transitions (bootstrap, joining->up, leaving->left);
  // true if the view changed.
  bool Advance();

 private:
  void Refute(const MemberState& incoming_self);

  std::string self_id_;
  std::vector<std::string> seeds_;
  View view_;
};

}  // namespace itsuka::core
