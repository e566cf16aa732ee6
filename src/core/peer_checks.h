// What a member may send: the checks a node applies to a peer message after the
// transport authenticated its sender and the decoder accepted its values, and the
// answers that tell a refused request's sender it failed (instead of letting it time
// out).
//
// Design note: every member may coordinate reads, read repair, hint replay, forwarded
// writes and anti-entropy runs for any key (core/node_core.h, core/repair.h), so those
// messages are accepted from every *active* member (known in the view, not left); replica
// writes from any member in the view, left ones included, because a decommissioned
// node may still hand off the hints it acknowledged writes with -- but only with a
// current ring: the ring fence (CheckSender) refuses a fenced request planned on an
// older view than the receiver's, so a left node restarted from its stale saved view
// (which still shows it up) is refused everything, while one that knows it left (its
// view has its own departure) still hands off its hints. What
// is tied to ownership is checked against the rings: a partition transfer (TransferRequest) goes
// only to a member that gains the partition in the write ring, and Paxos messages for a
// key come only from a member of the key's read- or write-ring preference list (the
// proposer is always a primary). Replies are matched to requests by id and sender, so
// they are not checked here. Gossip has its own rule (FilterGossip): a member speaks
// for its own liveness; what it relays about others must be state the cluster's flows
// could have produced.
//
// Pure functions; thread-compatible.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/gossip.h"
#include "core/messages.h"
#include "core/object.h"
#include "core/ring.h"
#include "itsuka/status.h"

namespace itsuka::core {

// What the receiver knows when it checks a sender. Rings may be absent (no ring yet).
struct SenderContext {
  const View* view = nullptr;
  const Ring* read = nullptr;
  const Ring* write = nullptr;
  size_t n = 3;
  // The receiver's ownership version (OwnershipVersion(*view)); 0: no fencing.
  uint64_t ring_version = 0;
};

// True for a member of `view` that is not left.
bool IsActiveMember(const View& view, const std::string& id);

// The fenced messages (ring fence, below): replica writes and reads, ForwardPut,
// ForwardConsistent and the Paxos requests, and their replies, carry a ring_version.
// RingVersionOf: that field (nullopt for other messages). StampRingVersion sets it on
// a fenced message that has none yet (0) and leaves every other message alone.
std::optional<uint64_t> RingVersionOf(const PeerMessage& msg);
void StampRingVersion(PeerMessage* msg, uint64_t version);

// Why CheckSender refused, for the counters (INFO cluster).
enum class SenderRefusal {
  kNone,
  kNotMember,   // not in the view
  kLeft,        // known as left (peer_left_sender_refused)
  kStaleRing,   // a fenced request planned on an older ring (peer_stale_ring_refused)
  kOwnership,   // not an owner of what it asks for (transfer, Paxos)
};

// Ok if `from` may send `msg` (gossip, Hello, Heartbeat and replies always pass); else
// kInvalidArgument saying why, and *kind (if given) says which rule refused it.
//
// The ring fence: a fenced *request* whose ring_version is below ctx.ring_version was
// planned on a view this node has seen superseded (a dominated view's sum is strictly
// lower; docs/DESIGN.md 5.5), so it is refused, whatever the sender and the message
// (a version of 0 is a build without the field, refused alike). The refusal text
// starts with "STALERING" and names both versions. A request from a newer ring is
// admitted (the sender's rings are the more current; the receiver catches up, see
// core/node.h). Checked after membership: a left sender is refused as left.
Status CheckSender(const std::string& from, const PeerMessage& msg, const SenderContext& ctx,
                   SenderRefusal* kind = nullptr);

// Value bounds that depend on the receiver's settings: an object carried by `msg` may
// hold at most limits.max_siblings * n siblings (each coordinator caps its result at
// max_siblings; merging the copies of n primaries that were cut off from each other
// can reach n times that, no legitimate flow more).
Status CheckLimits(const PeerMessage& msg, const ObjectLimits& limits, size_t n);

// The answer to a refused request (ok = false, error = why), for the request types
// that have one; nullopt for the others (no reply wanted, or req_id 0).
std::optional<PeerMessage> RefusalReply(const PeerMessage& request, const std::string& why);

// For a refused *reply*: the same reply marked failed (ok = false, error = why), for
// the receiver to process as if the sender had answered with an error, so the request
// it answers fails at once. nullopt for messages that are not replies.
std::optional<PeerMessage> FailedReply(const PeerMessage& reply, const std::string& why);

// The part of a gossiped view from `from` this node (`self`) accepts, given its own
// view `mine`. An entry about `from` itself (its liveness and the ownership states it
// may set) and about members this node has not heard of pass. An entry about another
// known member M passes unless it
//   - changes M's addresses without a higher incarnation of M (a restart),
//   - moves M's ownership in a way no flow does: the only transitions are
//     joining -> up, joining -> leaving (an operator's LEAVE of a joiner, or a node
//     away while it became up), joining -> left (a node away for its whole join and
//     leave), up -> leaving and leaving -> left, each with a higher ownership
//     version; and up -> left only with at least the two bumps of up -> leaving ->
//     left (a node away for M's whole leaving phase). No flow takes an up member to
//     left without leaving (Gossiper::Leave of a joiner makes it leaving, never left),
//     so a one-bump up -> left (or a same-version one) is refused as a forgery,
//   - raises M's incarnation or ownership version by more than kMaxGossipJump at once.
// An entry about `self` is checked for its ownership move only (Gossiper::Receive
// refutes liveness and takes only the ownership register from others), so no peer can
// mark this node left. Each refused entry is left out and described in *why.
inline constexpr uint64_t kMaxGossipJump = 1000;
View FilterGossip(const View& mine, const View& incoming, const std::string& from,
                  const std::string& self, std::vector<std::string>* why);

}  // namespace itsuka::core
