// What a member may send: the checks a node applies to a peer message after the
// transport authenticated its sender and the decoder accepted its values, and the
// answers that tell a refused request's sender it failed (instead of letting it time
// out).
//
// Design note: every member may coordinate reads, read repair, hint replay, forwarded
// writes and anti-entropy runs for any key (core/node_core.h, core/repair.h), so those
// messages are accepted from every *active* member (known in the view, not left); replica
// writes from any member in the view, left ones included, because a decommissioned
// node may still hand off the hints it acknowledged writes with. What
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
};

// True for a member of `view` that is not left.
bool IsActiveMember(const View& view, const std::string& id);

// Ok if `from` may send `msg` (gossip, Hello, Heartbeat and replies always pass); else
// kInvalidArgument saying why.
Status CheckSender(const std::string& from, const PeerMessage& msg, const SenderContext& ctx);

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
//     joining -> up, joining -> left (leave before any data), up -> leaving and
//     leaving -> left, each with a higher ownership version; and up -> left only
//     with at least the two bumps of up -> leaving -> left (a node away for M's whole
//     leaving phase; an operator's LEAVE of M made where M was still joining, while
//     Advance made it up elsewhere, has three: Gossiper::Leave). A one-bump up -> left
//     (or a same-version one) is refused as a forgery,
//   - raises M's incarnation or ownership version by more than kMaxGossipJump at once.
// An entry about `self` is checked for its ownership move only (Gossiper::Receive
// refutes liveness and takes only the ownership register from others), so no peer can
// mark this node left. Each refused entry is left out and described in *why.
inline constexpr uint64_t kMaxGossipJump = 1000;
View FilterGossip(const View& mine, const View& incoming, const std::string& from,
                  const std::string& self, std::vector<std::string>* why);

}  // namespace itsuka::core
