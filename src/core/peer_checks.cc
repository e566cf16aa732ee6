#include "core/peer_checks.h"

#include <algorithm>
#include <tuple>
#include <type_traits>

#include "common/hash.h"

namespace itsuka::core {
namespace {

bool InList(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Whether `from` is in the read- or write-ring preference list of partition `p`.
bool HoldsPartition(const SenderContext& ctx, uint32_t p, const std::string& from, bool read,
                    bool write) {
  if (read && ctx.read != nullptr && p < ctx.read->partitions() &&
      InList(ctx.read->PreferenceList(p, ctx.n), from)) {
    return true;
  }
  return write && ctx.write != nullptr && p < ctx.write->partitions() &&
         InList(ctx.write->PreferenceList(p, ctx.n), from);
}

bool HoldsKey(const SenderContext& ctx, const std::string& key, const std::string& from) {
  if (ctx.read != nullptr &&
      HoldsPartition(ctx, ctx.read->PartitionOfKey(key), from, true, false)) {
    return true;
  }
  return ctx.write != nullptr &&
         HoldsPartition(ctx, ctx.write->PartitionOfKey(key), from, false, true);
}

bool ObjectOk(const Object& obj, size_t max) { return obj.siblings.size() <= max; }

}  // namespace

bool IsActiveMember(const View& view, const std::string& id) {
  auto it = view.find(id);
  return it != view.end() && it->second.status != MemberStatus::kLeft;
}

std::optional<uint64_t> RingVersionOf(const PeerMessage& msg) {
  return std::visit(
      [](const auto& m) -> std::optional<uint64_t> {
        if constexpr (requires { m.ring_version; }) {
          return m.ring_version;
        } else {
          return std::nullopt;
        }
      },
      msg);
}

void StampRingVersion(PeerMessage* msg, uint64_t version) {
  std::visit(
      [version](auto& m) {
        if constexpr (requires { m.ring_version; }) {
          if (m.ring_version == 0) m.ring_version = version;
        }
      },
      *msg);
}

namespace {

// The ring fence (peer_checks.h CheckSender): requests only; replies carry the
// answering node's version for the asker's catch-up and are never refused for it.
Status CheckRing(const std::string& from, const PeerMessage& msg, const SenderContext& ctx) {
  const bool request =
      std::holds_alternative<ReplicaWrite>(msg) || std::holds_alternative<ReplicaRead>(msg) ||
      std::holds_alternative<ForwardPut>(msg) || std::holds_alternative<ForwardConsistent>(msg) ||
      std::holds_alternative<PaxosPrepare>(msg) || std::holds_alternative<PaxosAccept>(msg) ||
      std::holds_alternative<PaxosCommit>(msg);
  if (!request || ctx.ring_version == 0) return Status::Ok();
  const std::optional<uint64_t> theirs = RingVersionOf(msg);
  if (!theirs || *theirs >= ctx.ring_version) return Status::Ok();
  return Status::InvalidArgument(
      "STALERING '" + from + "' sent this on ownership version " + std::to_string(*theirs) +
      (*theirs == 0 ? " (a build without ring fencing)" : "") + ", older than this node's " +
      std::to_string(ctx.ring_version) + "; it must catch up (gossip) and retry");
}

Status CheckMembership(const std::string& from, const PeerMessage& msg, const SenderContext& ctx,
                       SenderRefusal* why) {
  return std::visit(
      [&](const auto& m) -> Status {
        using T = std::decay_t<decltype(m)>;
        constexpr bool kFree = std::is_same_v<T, Hello> || std::is_same_v<T, Heartbeat> ||
                               std::is_same_v<T, GossipSyn> || std::is_same_v<T, GossipAck> ||
                               std::is_same_v<T, ReplicaWriteAck> ||
                               std::is_same_v<T, ReplicaReadReply> ||
                               std::is_same_v<T, ForwardResult> || std::is_same_v<T, PaxosPromise> ||
                               std::is_same_v<T, PaxosAccepted> ||
                               std::is_same_v<T, ConsistentResult> || std::is_same_v<T, TreeReply> ||
                               std::is_same_v<T, LeafReply> || std::is_same_v<T, FetchReply> ||
                               std::is_same_v<T, PushReply> || std::is_same_v<T, TombstoneReply> ||
                               std::is_same_v<T, TransferBatch> || std::is_same_v<T, ClockProbe> ||
                               std::is_same_v<T, ClockEcho> || std::is_same_v<T, PeerInfo> ||
                               std::is_same_v<T, ScanReply> || std::is_same_v<T, KeyCountReply>;
        if constexpr (kFree) {
          return Status::Ok();
        } else {
          if constexpr (std::is_same_v<T, ReplicaWrite>) {
            // A decommissioned member may still hold hints (acknowledged writes) for
            // others: its replays must land. Merging is safe from any member.
            if (ctx.view == nullptr || ctx.view->count(from) == 0) {
              *why = SenderRefusal::kNotMember;
              return Status::InvalidArgument("sender '" + from + "' is not a member");
            }
            return Status::Ok();
          }
          if (ctx.view == nullptr || !IsActiveMember(*ctx.view, from)) {
            const bool left = ctx.view != nullptr && ctx.view->count(from) != 0;
            *why = left ? SenderRefusal::kLeft : SenderRefusal::kNotMember;
            return Status::InvalidArgument("sender '" + from + "' is not an active member" +
                                           (left ? std::string(" (it left the cluster)") : ""));
          }
          if constexpr (std::is_same_v<T, TransferRequest>) {
            // A transfer goes only to a member that gains every partition it asks for
            // (the refusal texts below are unchanged: they are part of the replies).
            *why = SenderRefusal::kOwnership;
            if (ctx.write == nullptr || m.ring_partitions != ctx.write->partitions()) {
              return Status::InvalidArgument("partition copy for another ring size");
            }
            for (uint32_t p : m.partitions) {
              if (!HoldsPartition(ctx, p, from, false, true)) {
                return Status::InvalidArgument("'" + from + "' asks for a copy of partition " +
                                               std::to_string(p) + ", which it does not gain");
              }
            }
          } else if constexpr (std::is_same_v<T, PaxosPrepare> || std::is_same_v<T, PaxosAccept> ||
                               std::is_same_v<T, PaxosCommit>) {
            if (!HoldsKey(ctx, m.key, from)) {
              *why = SenderRefusal::kOwnership;
              return Status::InvalidArgument("Paxos message from '" + from +
                                             "', which is not a replica of the key");
            }
          }
          return Status::Ok();
        }
      },
      msg);
}

}  // namespace

Status CheckSender(const std::string& from, const PeerMessage& msg, const SenderContext& ctx,
                   SenderRefusal* kind) {
  SenderRefusal ignored;
  SenderRefusal& why = kind != nullptr ? *kind : ignored;
  why = SenderRefusal::kNone;
  Status st = CheckMembership(from, msg, ctx, &why);
  if (!st.ok()) return st;
  why = SenderRefusal::kNone;
  st = CheckRing(from, msg, ctx);
  why = st.ok() ? SenderRefusal::kNone : SenderRefusal::kStaleRing;
  return st;
}

Status CheckLimits(const PeerMessage& msg, const ObjectLimits& limits, size_t n) {
  const size_t max = limits.max_siblings * std::max<size_t>(n, 1);
  bool ok = true;
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, ReplicaWrite> || std::is_same_v<T, PaxosAccept> ||
                      std::is_same_v<T, PaxosCommit>) {
          ok = ObjectOk(m.object, max);
        } else if constexpr (std::is_same_v<T, ReplicaReadReply> ||
                             std::is_same_v<T, ConsistentResult> ||
                             std::is_same_v<T, ForwardResult>) {
          ok = ObjectOk(m.object, max);
        } else if constexpr (std::is_same_v<T, ForwardPut>) {
          ok = ObjectOk(m.seen, max);
        } else if constexpr (std::is_same_v<T, PaxosPromise>) {
          ok = ObjectOk(m.value, max) && ObjectOk(m.data, max);
        } else if constexpr (std::is_same_v<T, PushRequest> || std::is_same_v<T, FetchReply>) {
          for (const KeyObject& o : m.objects) ok = ok && ObjectOk(o.object, max);
        } else if constexpr (std::is_same_v<T, TransferBatch>) {
          for (const auto& [k, o] : m.objects) ok = ok && ObjectOk(o, max);
          for (const KeyPaxosState& s : m.paxos) ok = ok && ObjectOk(s.value, max);
        }
      },
      msg);
  if (ok) return Status::Ok();
  return Status::InvalidArgument("object with more than " + std::to_string(max) +
                                 " siblings (limits.max_siblings x cluster.n)");
}

std::optional<PeerMessage> RefusalReply(const PeerMessage& request, const std::string& why) {
  const std::string error = "refused: " + why;
  const auto code = static_cast<uint32_t>(Status::Code::kInvalidArgument);
  return std::visit(
      [&](const auto& m) -> std::optional<PeerMessage> {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, ReplicaWrite>) {
          if (m.req_id == 0) return std::nullopt;
          return ReplicaWriteAck{m.req_id, false, error};
        } else if constexpr (std::is_same_v<T, ReplicaRead>) {
          return ReplicaReadReply{m.req_id, false, Object(), error};
        } else if constexpr (std::is_same_v<T, ForwardPut>) {
          return ForwardResult{m.req_id, code, error, false, {}};
        } else if constexpr (std::is_same_v<T, ForwardConsistent>) {
          return ConsistentResult{m.req_id, code, error, false, Object()};
        } else if constexpr (std::is_same_v<T, PaxosPrepare>) {
          PaxosPromise r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, PaxosAccept>) {
          PaxosAccepted r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, TreeRequest>) {
          TreeReply r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, LeafRequest>) {
          LeafReply r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, FetchRequest>) {
          FetchReply r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, PushRequest>) {
          return PushReply{m.req_id, false, error};
        } else if constexpr (std::is_same_v<T, TombstoneRequest>) {
          TombstoneReply r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, ScanRequest>) {
          ScanReply r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, KeyCountRequest>) {
          KeyCountReply r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, TransferRequest>) {
          TransferBatch r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else {
          return std::nullopt;
        }
      },
      request);
}

std::optional<PeerMessage> FailedReply(const PeerMessage& reply, const std::string& why) {
  const std::string error = "refused reply: " + why;
  const auto code = static_cast<uint32_t>(Status::Code::kCorruption);
  return std::visit(
      [&](const auto& m) -> std::optional<PeerMessage> {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, ReplicaWriteAck>) {
          return ReplicaWriteAck{m.req_id, false, error};
        } else if constexpr (std::is_same_v<T, ReplicaReadReply>) {
          return ReplicaReadReply{m.req_id, false, Object(), error};
        } else if constexpr (std::is_same_v<T, ForwardResult>) {
          return ForwardResult{m.req_id, code, error, false, {}};
        } else if constexpr (std::is_same_v<T, ConsistentResult>) {
          return ConsistentResult{m.req_id, code, error, false, Object()};
        } else if constexpr (std::is_same_v<T, PaxosPromise>) {
          PaxosPromise r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, PaxosAccepted>) {
          PaxosAccepted r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, TreeReply> || std::is_same_v<T, LeafReply> ||
                             std::is_same_v<T, FetchReply> || std::is_same_v<T, TombstoneReply> ||
                             std::is_same_v<T, TransferBatch> || std::is_same_v<T, ScanReply> ||
                             std::is_same_v<T, KeyCountReply>) {
          T r;
          r.req_id = m.req_id;
          r.error = error;
          return r;
        } else if constexpr (std::is_same_v<T, PushReply>) {
          return PushReply{m.req_id, false, error};
        } else {
          return std::nullopt;
        }
      },
      reply);
}

View FilterGossip(const View& mine, const View& incoming, const std::string& from,
                  const std::string& self, std::vector<std::string>* why) {
  View out;
  for (const auto& [id, m] : incoming) {
    auto cur = mine.find(id);
    if (cur == mine.end()) {
      out.emplace(id, m);
      continue;
    }
    const MemberState& c = cur->second;
    std::string refused;
    if (id == self) {
      // Only this node's ownership register is taken from others (Gossiper::Receive);
      // it follows the same transitions as anyone's.
    } else if (m.incarnation > c.incarnation + kMaxGossipJump ||
               m.version > c.version + kMaxGossipJump) {
      refused = "incarnation or ownership version jumps by more than " +
                std::to_string(kMaxGossipJump);
    } else if (id != from && m.incarnation <= c.incarnation &&
               (MergeMember(c, m).client_addr != c.client_addr ||
                MergeMember(c, m).peer_addr != c.peer_addr)) {
      // It would win the merge (newer liveness) and move the member without a restart.
      refused = "address change without a new incarnation";
    }
    if (refused.empty() && std::tie(m.version, m.status) > std::tie(c.version, c.status) &&
        m.status != c.status) {
      using S = MemberStatus;
      const S a = c.status, b = m.status;
      // up -> left skips leaving: a node that was away (down, or partitioned) for a
      // member's whole decommission sees this, with the two version bumps the flow made
      // (up -> leaving -> left, Gossiper::Leave then Advance). A single bump cannot be it.
      const bool legal = (a == S::kJoining && (b == S::kUp || b == S::kLeaving || b == S::kLeft)) ||
                         (a == S::kUp && b == S::kLeaving) || (a == S::kLeaving && b == S::kLeft) ||
                         (a == S::kUp && b == S::kLeft && m.version >= c.version + 2);
      if (!legal || m.version <= c.version || m.version > c.version + kMaxGossipJump) {
        refused = std::string("ownership ") + MemberStatusName(a) + " -> " + MemberStatusName(b) +
                  " is not a transition any flow makes";
      }
    }
    if (refused.empty()) {
      out.emplace(id, m);
    } else if (why != nullptr) {
      why->push_back("member '" + id + "': " + refused);
    }
  }
  return out;
}

}  // namespace itsuka::core
