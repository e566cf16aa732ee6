#include "core/node_core.h"

#include <algorithm>
#include <type_traits>
#include <variant>

#include "core/peer_checks.h"

namespace itsuka::core {

NodeCore::NodeCore(std::string self, LocalStore& store, NodeOptions options)
    : ctx_(std::move(self), store, options),
      handoff_(ctx_),
      forwarder_(ctx_),
      reads_(ctx_, handoff_),
      writes_(ctx_, handoff_, forwarder_),
      transfers_(ctx_),
      consensus_(ctx_, forwarder_) {
  ctx_.at_capacity = [this] { return inflight() >= ctx_.options.max_inflight; };
}

void NodeCore::SetReachable(const std::string& node, bool up) {
  if (up) {
    ctx_.unreachable.erase(node);
  } else if (node != ctx_.self) {
    ctx_.unreachable.insert(node);
  }
}

void NodeCore::StampSends() {
  if (!ctx_.ring) return;
  for (auto& [to, msg] : ctx_.out.sends) StampRingVersion(&msg, ctx_.ring->version());
}

void NodeCore::SetRings(Ring read, Ring write, uint64_t write_fingerprint) {
  // What the rooms planned on the ring in force is sent with that ring's version.
  StampSends();
  read.CachePreferenceLists(static_cast<size_t>(std::max(ctx_.options.n, 0)));
  write.CachePreferenceLists(static_cast<size_t>(std::max(ctx_.options.n, 0)));
  ctx_.ring = std::move(read);
  ctx_.write_ring = std::move(write);
  transfers_.Plan(write_fingerprint);
}

int NodeCore::EffectiveN() const {
  if (!ctx_.ring) return 0;
  return std::min<int>(ctx_.options.n, static_cast<int>(ctx_.ring->members().size()));
}

Outbox NodeCore::TakeOutbox() {
  StampSends();
  Outbox o;
  std::swap(o, ctx_.out);
  ++ctx_.round;
  return o;
}

void NodeCore::Tick(int64_t now_ms) {
  transfers_.Tick(now_ms);
  writes_.Tick(now_ms);
  reads_.Tick(now_ms);
  handoff_.Tick(now_ms);
  forwarder_.Tick(now_ms);
  consensus_.Tick(now_ms);
  ctx_.recent.Expire(now_ms);
}

namespace {
// The id a reply repeats, for the replies routed by the request-id registry.
template <typename T>
constexpr bool kIsReply =
    std::is_same_v<T, ReplicaWriteAck> || std::is_same_v<T, ReplicaReadReply> ||
    std::is_same_v<T, ForwardResult> || std::is_same_v<T, ConsistentResult> ||
    std::is_same_v<T, PaxosPromise> || std::is_same_v<T, PaxosAccepted> ||
    std::is_same_v<T, TransferBatch>;
}  // namespace

void NodeCore::OnMessage(const std::string& from, const PeerMessage& msg, int64_t now_ms) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (kIsReply<T>) RouteReply(from, msg, m.req_id, now_ms);
        else if constexpr (std::is_same_v<T, ReplicaWrite>) writes_.HandleWrite(from, m);
        else if constexpr (std::is_same_v<T, ReplicaRead>) reads_.HandleRead(from, m);
        else if constexpr (std::is_same_v<T, ForwardPut>) writes_.HandleForwardPut(from, m, now_ms);
        else if constexpr (std::is_same_v<T, PaxosPrepare>) consensus_.HandlePrepare(from, m);
        else if constexpr (std::is_same_v<T, PaxosAccept>) consensus_.HandleAccept(from, m);
        else if constexpr (std::is_same_v<T, PaxosCommit>) consensus_.HandleCommit(m);
        else if constexpr (std::is_same_v<T, ForwardConsistent>) consensus_.HandleForward(from, m, now_ms);
        else if constexpr (std::is_same_v<T, TransferRequest>) transfers_.HandleRequest(from, m);
        // Hello is the transport's business.
      },
      msg);
}

void NodeCore::RouteReply(const std::string& from, const PeerMessage& msg, uint64_t req_id,
                          int64_t now_ms) {
  const std::optional<Room> owner = ctx_.requests.Owner(req_id);
  if (!owner) return;  // unknown, or closed: a late reply
  if (const auto* m = std::get_if<ReplicaWriteAck>(&msg)) {
    if (*owner == Room::kWrites) writes_.OnAck(req_id, from, *m);
    if (*owner == Room::kHandoff) handoff_.OnAck(req_id, from, *m);
  } else if (const auto* m = std::get_if<ReplicaReadReply>(&msg)) {
    if (*owner == Room::kReads) reads_.OnReply(req_id, from, *m);
    if (*owner == Room::kWrites) writes_.OnReadReply(req_id, from, *m);  // read before a write
  } else if (const auto* m = std::get_if<ForwardResult>(&msg)) {
    if (*owner == Room::kForwards) {
      forwarder_.OnResult(req_id, from, Status::FromCode(static_cast<Status::Code>(m->code), m->message),
                          m->applied, m->object);
    }
  } else if (const auto* m = std::get_if<ConsistentResult>(&msg)) {
    if (*owner == Room::kForwards) {
      forwarder_.OnResult(req_id, from, Status::FromCode(static_cast<Status::Code>(m->code), m->message),
                          m->applied, m->object);
    }
  } else if (const auto* m = std::get_if<PaxosPromise>(&msg)) {
    if (*owner == Room::kConsensus) consensus_.OnPromise(req_id, from, *m, now_ms);
  } else if (const auto* m = std::get_if<PaxosAccepted>(&msg)) {
    if (*owner == Room::kConsensus) consensus_.OnAccepted(req_id, from, *m, now_ms);
  } else if (const auto* m = std::get_if<TransferBatch>(&msg)) {
    if (*owner == Room::kTransfer) transfers_.OnBatch(req_id, from, *m, now_ms);
  }
}

}  // namespace itsuka::core
