#include "server/peers.h"

#include <cstdio>
#include <cstdlib>

#include "common/log.h"
#include "wire/peer_codec.h"

namespace itsuka::server {

bool PeerTransport::FrameBuffer::Feed(std::string_view data, size_t max_frame,
                                      const std::function<bool(std::string_view)>& on_frame) {
  buf.append(data.data(), data.size());
  size_t pos = 0;
  while (buf.size() - pos >= 4) {
    const auto* p = reinterpret_cast<const unsigned char*>(buf.data() + pos);
    const size_t len = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
    if (len > max_frame) return false;
    if (buf.size() - pos - 4 < len) break;
    if (!on_frame(std::string_view(buf.data() + pos + 4, len))) return false;
    pos += 4 + len;
  }
  buf.erase(0, pos);
  return true;
}

PeerTransport::PeerTransport(net::Loop& loop, const Config& config, MessageFn on_message,
                             UpFn on_up)
    : loop_(loop), config_(config), on_message_(std::move(on_message)), on_up_(std::move(on_up)) {}

PeerTransport::~PeerTransport() {
  heartbeat_.reset();
  delay_timer_.reset();
  incoming_.clear();
  outgoing_.clear();
  listener_.reset();
}

size_t PeerTransport::MaxFrame() const {
  // The largest message carries one object of at most max_object_bytes (plus a little
  // framing); a merge may have grown it past the cap, so allow twice that.
  return static_cast<size_t>(config_.max_object_bytes) * 2 + (1 << 20);
}

Status PeerTransport::Start() {
  const int port = static_cast<int>(EffectivePeerPort(config_));
  Result<std::unique_ptr<net::TcpListener>> l = net::TcpListener::Listen(
      loop_, config_.bind, port, 128,
      [this](std::unique_ptr<net::TcpConnection> conn) { OnAccept(std::move(conn)); });
  if (!l.ok()) return Status::IOError("cluster.peer_port: " + l.status().message());
  listener_ = std::move(l).value();
  for (const std::string& seed : config_.seeds) {
    SeedAddress a = ParseSeed(seed).value();  // validated with the config
    Outgoing& out = outgoing_[a.id];
    out.addr = a;
    out.retry = std::make_unique<net::Timer>(loop_, [this, id = a.id] { Connect(outgoing_[id]); });
    Connect(out);
  }
  const auto interval = static_cast<uint64_t>(config_.heartbeat_interval_ms);
  heartbeat_ = std::make_unique<net::Timer>(loop_, [this] { OnHeartbeatTimer(); });
  heartbeat_->Start(interval, interval);
  return Status::Ok();
}

bool PeerTransport::AddPeer(const std::string& id, const std::string& host, int port) {
  if (id == config_.node_id || id.empty() || port <= 0 || port > 65535 || host.empty()) return false;
  auto it = outgoing_.find(id);
  if (it != outgoing_.end()) {
    // cluster.seeds addresses are the operator's word; gossip may move the others.
    bool seed = false;
    for (const std::string& s : config_.seeds) seed = seed || ParseSeed(s)->id == id;
    if (!seed && (it->second.addr.host != host || it->second.addr.port != port)) {
      // A member that moved: the next connection attempt uses the new address.
      it->second.addr.host = host;
      it->second.addr.port = port;
      if (!it->second.up && it->second.conn) it->second.conn->Close();
    }
    return false;
  }
  Outgoing& out = outgoing_[id];
  out.addr = SeedAddress{id, host, port};
  out.retry = std::make_unique<net::Timer>(loop_, [this, id] { Connect(outgoing_[id]); });
  LOG_INFO << "member " << id << " (" << host << ":" << port << ") learned by gossip";
  Connect(out);
  return true;
}

bool PeerTransport::Suspected(const Outgoing& out) const {
  return out.detector.Phi(loop_.NowMs()) > static_cast<double>(config_.phi_threshold);
}

void PeerTransport::Report(Outgoing& out) {
  const bool reachable = out.up && !Suspected(out);
  if (reachable == out.reported) return;
  out.reported = reachable;
  if (out.up && !reachable) {
    LOG_WARN << "peer " << out.addr.id << " is suspected (phi "
             << out.detector.Phi(loop_.NowMs()) << "): no heartbeat";
  } else if (out.up) {
    LOG_INFO << "peer " << out.addr.id << " is reachable";
  }
  on_up_(out.addr.id, reachable);
}

void PeerTransport::OnHeartbeatTimer() {
  for (auto& [id, out] : outgoing_) {
    if (out.up) Send(id, core::Heartbeat{});
    if (out.up && wall_ms_) Send(id, core::ClockProbe{wall_ms_()});
    Report(out);
  }
  Flush();
}

void PeerTransport::OnClockEcho(const std::string& from, const core::ClockEcho& echo) {
  auto it = outgoing_.find(from);
  if (it == outgoing_.end() || !it->second.up || !wall_ms_) return;
  core::OffsetSample s;
  // An echo slower than a few heartbeats says little about the offset.
  const int64_t max_rtt = std::max<int64_t>(1000, 5 * config_.heartbeat_interval_ms);
  if (!core::EstimateOffset(echo.probe_wall_ms, echo.wall_ms, wall_ms_(), max_rtt, &s)) return;
  Outgoing& out = it->second;
  out.clock.Add(s);
  const core::OffsetSample best = out.clock.Best();
  const int64_t bound = config_.max_clock_offset_ms;
  const bool over = bound > 0 && std::llabs(best.offset_ms) - best.uncertainty_ms > bound;
  if (over && !out.clock_warned) {
    LOG_WARN << "peer " << from << ": its clock is " << best.offset_ms << " ms (+-"
             << best.uncertainty_ms << ") off from this node's, past cluster.max_clock_offset_ms ("
             << bound << "); expiry times set by one are wrong for the other by as much";
  } else if (!over && out.clock_warned) {
    LOG_INFO << "peer " << from << ": clock offset back within cluster.max_clock_offset_ms ("
             << best.offset_ms << " ms)";
  }
  out.clock_warned = over;
}

bool PeerTransport::ClockOffset(const std::string& node, core::OffsetSample* out) const {
  auto it = outgoing_.find(node);
  if (it == outgoing_.end() || !it->second.up || !it->second.clock.known()) return false;
  *out = it->second.clock.Best();
  return true;
}

void PeerTransport::Connect(Outgoing& out) {
  const std::string id = out.addr.id;
  out.frames.buf.clear();
  out.conn = net::TcpConnection::Connect(loop_, out.addr.host, out.addr.port, [this, id](Status st) {
    Outgoing& o = outgoing_[id];
    if (!st.ok()) {
      LOG_DEBUG << "peer " << id << ": " << st.message();
      return;  // on_closed follows and schedules the retry
    }
    WriteFrame(*o.conn, core::Hello{config_.cluster_name, core::kPeerProtocolVersion, config_.node_id});
  });
  out.conn->Start(
      [this, id](std::string_view data) {
        Outgoing& o = outgoing_[id];
        if (!o.frames.Feed(data, FrameLimit(o.up),
                           [&](std::string_view f) { return OnOutgoingFrame(o, f); })) {
          ++stats_.bad_frames;
          LOG_WARN << "peer " << id << ": bad frame on outgoing connection; reconnecting";
          o.conn->Close();
        }
      },
      [this, id] { OnOutgoingClosed(outgoing_[id]); });
}

void PeerTransport::OnOutgoingClosed(Outgoing& out) {
  if (out.up) {
    out.up = false;
    LOG_WARN << "peer " << out.addr.id << " (" << out.addr.host << ":" << out.addr.port
             << ") is unreachable; retrying";
    Report(out);
  }
  out.conn.reset();
  out.retry->Start(out.backoff_ms, 0);
  out.backoff_ms = std::min<uint64_t>(out.backoff_ms * 2, 5000);
}

bool PeerTransport::OnOutgoingFrame(Outgoing& out, std::string_view frame) {
  Result<core::PeerMessage> msg = wire::DecodePeerMessage(frame);
  if (!msg.ok()) return false;
  if (out.up) return true;  // only the Hello is expected on this direction
  const auto* hello = std::get_if<core::Hello>(&*msg);
  std::string why;
  if (hello == nullptr) return false;
  if (hello->node_id != out.addr.id) why = "answers as '" + hello->node_id + "'";
  else if (!AcceptHello(*hello, &why)) {}
  if (!why.empty()) {
    ++stats_.handshakes_refused;
    LOG_WARN << "peer " << out.addr.id << ": handshake refused: " << why;
    return false;
  }
  out.up = true;
  out.backoff_ms = 100;
  // A fresh detector: silence from before this connection says nothing about it. The
  // Hello itself is the first sign of life, so a peer that falls silent right after
  // the handshake is still suspected.
  out.detector = core::PhiAccrualDetector(config_.heartbeat_interval_ms);
  out.detector.Heartbeat(loop_.NowMs());
  out.clock.Clear();
  LOG_INFO << "peer " << out.addr.id << " (" << out.addr.host << ":" << out.addr.port << ") is up";
  Report(out);
  return true;
}

bool PeerTransport::AcceptHello(const core::Hello& hello, std::string* why) const {
  if (hello.cluster != config_.cluster_name) {
    *why = "cluster '" + hello.cluster + "', expected '" + config_.cluster_name + "'";
  } else if (hello.protocol_version != core::kPeerProtocolVersion) {
    *why = "protocol version " + std::to_string(hello.protocol_version) + ", expected " +
           std::to_string(core::kPeerProtocolVersion);
  } else if (hello.node_id.empty() || hello.node_id == config_.node_id) {
    *why = "node id '" + hello.node_id + "' is this node's own or empty";
  }
  return why->empty();
}

void PeerTransport::OnAccept(std::unique_ptr<net::TcpConnection> conn) {
  if (incoming_.size() >= static_cast<size_t>(config_.max_peer_connections)) {
    ++stats_.connections_refused;
    LOG_WARN << "peer connection from " << conn->peer() << " refused: cluster.max_peer_connections ("
             << config_.max_peer_connections << ") reached";
    return;  // destroying the connection closes it
  }
  const uint64_t id = next_incoming_++;
  Incoming& in = incoming_[id];
  in.conn = std::move(conn);
  in.handshake_deadline = std::make_unique<net::Timer>(loop_, [this, id] {
    auto it = incoming_.find(id);
    if (it == incoming_.end() || !it->second.peer_id.empty()) return;
    ++stats_.handshakes_timed_out;
    LOG_WARN << "peer connection from " << it->second.conn->peer() << ": no Hello within "
             << kHandshakeTimeoutMs << " ms; closing";
    it->second.conn->Close();
  });
  in.handshake_deadline->Start(kHandshakeTimeoutMs, 0);
  in.conn->Start(
      [this, id](std::string_view data) {
        Incoming& i = incoming_[id];
        if (!i.frames.Feed(data, FrameLimit(!i.peer_id.empty()),
                           [&](std::string_view f) { return OnIncomingFrame(id, f); })) {
          ++stats_.bad_frames;
          LOG_WARN << "peer connection from " << i.conn->peer() << ": bad frame or handshake; closing";
          i.conn->Close();
        }
      },
      [this, id] { incoming_.erase(id); });
}

bool PeerTransport::OnIncomingFrame(uint64_t id, std::string_view frame) {
  Incoming& in = incoming_[id];
  wire::PeerRefusal refusal;
  Result<core::PeerMessage> msg = wire::DecodePeerMessage(frame, &refusal);
  if (!msg.ok() && msg.status().code() == Status::Code::kInvalidArgument && !in.peer_id.empty()) {
    // One bad value is not a broken stream: refuse that message, keep the connection.
    ++stats_.messages_refused;
    if (on_refused_) on_refused_(in.peer_id, refusal, msg.status().message());
    return true;
  }
  if (!msg.ok()) {
    LOG_WARN << "peer " << (in.peer_id.empty() ? in.conn->peer() : in.peer_id) << ": "
             << msg.status().message();
    return false;
  }
  if (in.peer_id.empty()) {
    const auto* hello = std::get_if<core::Hello>(&*msg);
    std::string why = hello == nullptr ? "first message is not a Hello" : "";
    if (hello != nullptr) AcceptHello(*hello, &why);
    if (!why.empty()) {
      ++stats_.handshakes_refused;
      LOG_WARN << "peer connection from " << in.conn->peer() << " refused: " << why;
      return false;
    }
    in.peer_id = hello->node_id;
    in.handshake_deadline.reset();
    WriteFrame(*in.conn, core::Hello{config_.cluster_name, core::kPeerProtocolVersion, config_.node_id});
    return true;
  }
  ++stats_.messages_received;
  // Every message from a peer shows it is alive, not just heartbeats.
  auto out = outgoing_.find(in.peer_id);
  if (out != outgoing_.end()) out->second.detector.Heartbeat(loop_.NowMs());
  if (std::holds_alternative<core::Heartbeat>(*msg)) return true;
  if (const auto* probe = std::get_if<core::ClockProbe>(&*msg)) {
    if (wall_ms_) Send(in.peer_id, core::ClockEcho{probe->sent_wall_ms, wall_ms_()});
    return true;
  }
  if (const auto* echo = std::get_if<core::ClockEcho>(&*msg)) {
    OnClockEcho(in.peer_id, *echo);
    return true;
  }
  on_message_(in.peer_id, *msg);
  return true;
}

void PeerTransport::AppendFrame(std::string* out, std::string_view body) {
  const size_t n = body.size();
  const char header[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                          static_cast<char>(n >> 8), static_cast<char>(n)};
  out->append(header, 4);
  out->append(body);
}

void PeerTransport::WriteFrame(net::TcpConnection& conn, const core::PeerMessage& msg) {
  std::string frame;
  AppendFrame(&frame, wire::EncodePeerMessage(msg));
  conn.Write(frame);
}

void PeerTransport::Send(const std::string& to, const core::PeerMessage& msg) {
  if (config_.replica_write_delay_ms > 0 && std::holds_alternative<core::ReplicaWrite>(msg) &&
      (config_.replica_write_delay_peer.empty() || config_.replica_write_delay_peer == to)) {
    // Test-only lag. Bounded like a send queue: past 100,000 held messages, drop.
    if (delayed_.size() >= 100000) {
      ++stats_.messages_dropped;
      return;
    }
    if (!delay_timer_) {
      delay_timer_ = std::make_unique<net::Timer>(loop_, [this] { ReleaseDelayed(); });
      delay_timer_->Start(1, 1);
    }
    int64_t due = loop_.NowMs() + config_.replica_write_delay_ms;
    if (config_.replica_write_delay_jitter_ms > 0) {
      due += static_cast<int64_t>(delay_rng_() %
                                  static_cast<uint64_t>(config_.replica_write_delay_jitter_ms + 1));
    }
    delayed_.emplace(due, Delayed{due, to, msg});
    return;
  }
  Enqueue(to, msg);
}

void PeerTransport::ReleaseDelayed() {
  const int64_t now = loop_.NowMs();
  bool any = false;
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    Enqueue(delayed_.begin()->second.to, delayed_.begin()->second.msg);
    delayed_.erase(delayed_.begin());
    any = true;
  }
  if (any) Flush();
}

void PeerTransport::Enqueue(const std::string& to, const core::PeerMessage& msg) {
  auto it = outgoing_.find(to);
  if (it == outgoing_.end() || !it->second.up || !it->second.conn ||
      it->second.conn->queued_bytes() + it->second.pending.size() >
          static_cast<size_t>(config_.max_peer_queue_bytes)) {
    ++stats_.messages_dropped;
    return;
  }
  std::string body = wire::EncodePeerMessage(msg);
  if (body.size() > MaxFrame()) {
    // Siblings merged from both sides of a partition can outgrow the object cap; the
    // peer would refuse the frame and drop the connection with everything queued on it.
    ++stats_.messages_oversized;
    LOG_WARN << "peer " << to << ": not sending a " << body.size() << "-byte message (limit "
             << MaxFrame() << ")";
    return;
  }
  ++stats_.messages_sent;
  AppendFrame(&it->second.pending, body);
}

void PeerTransport::Flush() {
  for (auto& [id, out] : outgoing_) {
    if (out.pending.empty()) continue;
    if (out.up && out.conn) out.conn->Write(out.pending);
    out.pending.clear();
  }
}

bool PeerTransport::IsUp(const std::string& node) const {
  auto it = outgoing_.find(node);
  return it != outgoing_.end() && it->second.up;
}

std::vector<std::string> PeerTransport::Describe() const {
  std::vector<std::string> out;
  char phi[32];
  for (const auto& [id, o] : outgoing_) {
    std::snprintf(phi, sizeof phi, "%.1f", o.detector.Phi(loop_.NowMs()));
    // The state the node acts on (as last reported to it), and phi as of now.
    const char* state = !o.up ? "down" : o.reported ? "up" : "suspect";
    std::string clock;
    if (o.up && o.clock.known()) {
      const core::OffsetSample s = o.clock.Best();
      clock = ",offset_ms=" + std::to_string(s.offset_ms) +
              ",offset_uncertainty_ms=" + std::to_string(s.uncertainty_ms);
    }
    out.push_back("id=" + id + ",addr=" + o.addr.host + ":" + std::to_string(o.addr.port) +
                  ",state=" + state + ",phi=" + phi + clock);
  }
  return out;
}

}  // namespace itsuka::server
