#include "server/peers.h"

#include <cstdio>
#include <cstdlib>

#include <algorithm>

#include "common/log.h"
#include "server/peer_auth.h"
#include "server/data_format.h"
#include "wire/peer_codec.h"

namespace itsuka::server {

namespace {
size_t FrameLength(const std::string& buf, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(buf.data() + pos);
  return (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
}
}  // namespace

void PeerTransport::FrameBuffer::Reset(net::TcpConnection* c) {
  if (budget != nullptr) {
    if (paused) {
      budget->paused_bytes -= charged;
      for (auto it = budget->paused.begin(); it != budget->paused.end(); ++it) {
        if (*it == this) {
          budget->paused.erase(it);
          break;
        }
      }
    }
    budget->used -= charged;
  }
  paused = false;
  charged = 0;
  buf.clear();
  buf.shrink_to_fit();
  conn = c;
  if (budget != nullptr) budget->MaybeResume();
}

void PeerTransport::FrameBuffer::Recharge() {
  size_t want = buf.size();
  if (buf.size() >= 4) want = std::max(want, 4 + FrameLength(buf, 0));
  if (budget == nullptr) {
    charged = want;
    return;
  }
  const bool shrinking = want < charged;
  // Only an incomplete frame (a reservation beyond the bytes held) can wait, and only a
  // large one: small frames (handshakes, heartbeats, acknowledgements) always pass, so
  // they never queue behind bulk transfers (at most a few KiB per connection over).
  const size_t others_running = budget->used - charged - budget->paused_bytes;
  if (!shrinking && want > buf.size() && want > kMaxHandshakeFrame + 4 &&
      budget->used - charged + want > budget->limit &&
      others_running > 0 && conn != nullptr) {
    // Wait: hold only the bytes already read.
    budget->used = budget->used - charged + buf.size();
    charged = buf.size();
    paused = true;
    budget->paused_bytes += charged;
    budget->paused.push_back(this);
    ++budget->pauses;
    conn->PauseReading();
    return;
  }
  budget->used = budget->used - charged + want;
  charged = want;
  if (shrinking) budget->MaybeResume();
}

void PeerTransport::BufferBudget::MaybeResume() {
  while (!paused.empty()) {
    FrameBuffer* fb = paused.front();
    size_t want = fb->buf.size();
    if (fb->buf.size() >= 4) want = std::max(want, 4 + FrameLength(fb->buf, 0));
    const bool nobody_running = used == paused_bytes;
    if (!nobody_running && used - fb->charged + want > limit) return;
    paused.pop_front();
    paused_bytes -= fb->charged;
    used = used - fb->charged + want;
    fb->charged = want;
    fb->paused = false;
    if (fb->conn != nullptr) fb->conn->ResumeReading();
  }
}

bool PeerTransport::FrameBuffer::Feed(std::string_view data, size_t max_frame,
                                      const std::function<bool(std::string_view)>& on_frame) {
  buf.append(data.data(), data.size());
  size_t pos = 0;
  bool ok = true;
  while (buf.size() - pos >= 4) {
    const size_t len = FrameLength(buf, pos);
    if (len > max_frame) {
      ok = false;
      break;
    }
    if (buf.size() - pos - 4 < len) break;
    if (!on_frame(std::string_view(buf.data() + pos + 4, len))) {
      ok = false;
      break;
    }
    pos += 4 + len;
  }
  if (!ok) {
    Reset(nullptr);  // the connection is closing: nothing more is read or kept
    return false;
  }
  buf.erase(0, pos);
  if (buf.capacity() > (64 << 10) && buf.size() < buf.capacity() / 4) buf.shrink_to_fit();
  Recharge();
  return true;
}

PeerTransport::PeerTransport(net::Loop& loop, const Config& config, PeerIdentity identity,
                             MessageFn on_message, UpFn on_up, FatalFn on_fatal)
    : loop_(loop),
      config_(config),
      identity_(std::move(identity)),
      on_message_(std::move(on_message)),
      on_up_(std::move(on_up)),
      on_fatal_(std::move(on_fatal)),
      pause_guard_(config.heartbeat_interval_ms,
                   std::max<int64_t>(kMaxAcceptedPauseMs, 10 * config.heartbeat_interval_ms)) {
  budget_.limit = static_cast<size_t>(config_.max_peer_buffer_bytes);
}

const PeerStats& PeerTransport::stats() const {
  uint64_t handshaking = 0, authenticated = 0;
  for (const auto& [id, in] : incoming_) ++(in.peer_id.empty() ? handshaking : authenticated);
  stats_.handshaking = handshaking;
  stats_.authenticated = authenticated;
  stats_.buffer_bytes = budget_.used;
  stats_.reads_paused = budget_.pauses;
  return stats_;
}

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
      [this](std::unique_ptr<net::TcpConnection> conn) { OnAccept(std::move(conn)); }, tls_);
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

double PeerTransport::PhiOf(const Outgoing& out) const {
  return out.detector.Phi(loop_.NowMs(), pause_guard_.acceptable_pause_ms());
}

bool PeerTransport::Suspected(const Outgoing& out) const {
  return PhiOf(out) > static_cast<double>(config_.phi_threshold);
}

void PeerTransport::Report(Outgoing& out) {
  bool reachable = out.up && !Suspected(out);
  // Right after a pause of this node's own loop, a peer reported reachable stays so: what
  // it sent meanwhile may still wait unread (core::LocalPauseGuard).
  if (out.up && out.reported && !reachable && !pause_guard_.may_convict()) {
    ++stats_.convictions_held;
    reachable = true;
  }
  if (reachable == out.reported) return;
  out.reported = reachable;
  if (out.up && !reachable) {
    LOG_WARN << "peer " << out.addr.id << " is suspected (phi " << PhiOf(out)
             << ", accepted pause " << pause_guard_.acceptable_pause_ms()
             << " ms): no message from it";
  } else if (out.up) {
    LOG_INFO << "peer " << out.addr.id << " is reachable";
  }
  on_up_(out.addr.id, reachable);
}

int64_t PeerTransport::SilenceLimitMs() const {
  return std::max<int64_t>(kSilenceReconnectMs, 10 * config_.heartbeat_interval_ms);
}

void PeerTransport::DropSilent(const std::string& id, Outgoing& out) {
  ++stats_.silent_reconnects;
  LOG_WARN << "peer " << id << ": nothing heard for "
           << loop_.NowMs() - out.detector.last_heartbeat_ms()
           << " ms; dropping its connections and dialling again";
  // The connection it dials here (incoming) is the silent one: closing it tells the
  // peer, if it can still hear this node, to dial again. Closed asynchronously, so
  // iterating is safe.
  for (auto& [key, in] : incoming_) {
    if (in.peer_id != id || in.conn->closing()) continue;
    in.frames.Reset(nullptr);
    in.conn->Close();
  }
  if (out.conn) out.conn->Close();  // OnOutgoingClosed reports it down and redials
}

void PeerTransport::OnHeartbeatTimer() {
  const int64_t now = loop_.NowMs();
  if (!pause_guard_.Tick(now)) {
    ++stats_.local_pauses;
    if (pause_logged_ms_ < 0 || now - pause_logged_ms_ >= 10000) {
      pause_logged_ms_ = now;
      LOG_WARN << "this node's loop lags (heartbeat timer late; " << stats_.local_pauses
               << " late tick(s) so far): its peers' silence is not held against them in such "
                  "a tick (INFO cluster peer_local_pauses)";
    }
  }
  for (auto& [id, out] : outgoing_) {
    if (out.up && out.conn && !out.conn->closing() && out.detector.has_heartbeat() &&
        loop_.NowMs() - out.detector.last_heartbeat_ms() > SilenceLimitMs()) {
      DropSilent(id, out);
      continue;
    }
    if (out.up) Send(id, core::Heartbeat{});
    if (out.up && wall_ms_) Send(id, core::ClockProbe{wall_ms_()});
    Report(out);
  }
  Flush();
}

core::AuthHello PeerTransport::MakeHello(const std::string& nonce, uint32_t version) const {
  return core::AuthHello{config_.cluster_name, identity_.cluster_id, version,
                         config_.node_id,      identity_.instance_id, nonce,
                         identity_.data_format};
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
  out.frames.budget = &budget_;
  out.handshake = Handshake::kHelloSent;
  out.peer_nonce.clear();
  if (out.offer == 0) out.offer = MaxVersion();
  out.version = 0;
  if (!RandomBytes(kNonceBytes, &out.nonce)) {
    LOG_ERROR << "peer " << id << ": the random number generator failed; not connecting";
    out.retry->Start(out.backoff_ms, 0);
    return;
  }
  out.conn = net::TcpConnection::Connect(loop_, out.addr.host, out.addr.port, [this, id](Status st) {
    Outgoing& o = outgoing_[id];
    if (!st.ok()) {
      LOG_DEBUG << "peer " << id << ": " << st.message();
      return;  // on_closed follows and schedules the retry
    }
    WriteFrame(*o.conn, MakeHello(o.nonce, o.offer));
  }, tls_);
  out.frames.Reset(out.conn.get());
  out.handshake_deadline = std::make_unique<net::Timer>(loop_, [this, id] {
    Outgoing& o = outgoing_[id];
    if (o.up || !o.conn) return;
    ++stats_.handshakes_timed_out;
    LOG_WARN << "peer " << id << " (" << o.addr.host << ":" << o.addr.port
             << "): no handshake within " << kHandshakeTimeoutMs << " ms; retrying";
    o.conn->Close();
  });
  out.handshake_deadline->Start(kHandshakeTimeoutMs, 0);
  out.conn->Start(
      [this, id](std::string_view data) {
        Outgoing& o = outgoing_[id];
        if (!o.frames.Feed(data, FrameLimit(o.up),
                           [&](std::string_view f) { return OnOutgoingFrame(o, f); })) {
          ++stats_.bad_frames;
          LOG_WARN << "peer " << id << ": bad frame or handshake on outgoing connection; reconnecting";
          o.conn->Close();
        }
      },
      [this, id] { OnOutgoingClosed(outgoing_[id]); });
}

void PeerTransport::OnOutgoingClosed(Outgoing& out) {
  if (out.up) {
    out.up = false;
    out.offer = 0;  // the peer may come back as a newer build: offer the newest again
    LOG_WARN << "peer " << out.addr.id << " (" << out.addr.host << ":" << out.addr.port
             << ") is unreachable; retrying";
    Report(out);
  }
  out.frames.Reset(nullptr);
  out.handshake_deadline.reset();
  out.conn.reset();
  out.retry->Start(out.backoff_ms, 0);
  out.backoff_ms = std::min<uint64_t>(out.backoff_ms * 2, kMaxBackoffMs);
}

bool PeerTransport::OnOutgoingFrame(Outgoing& out, std::string_view frame) {
  if (!out.up) {
    Result<core::PeerMessage> msg = wire::DecodeHandshakeMessage(frame);
    if (!msg.ok()) {
      ++stats_.handshakes_refused;
      LOG_WARN << "peer " << out.addr.id << " (" << out.addr.host << ":" << out.addr.port
               << "): handshake refused: " << msg.status().message();
      return false;
    }
    return OnOutgoingHandshake(out, *msg);
  }
  Result<core::PeerMessage> msg = wire::DecodePeerMessage(frame);
  return msg.ok();  // nothing else is expected on this direction
}

bool PeerTransport::OnOutgoingResult(Outgoing& out, const core::AuthResult& r,
                                     const std::string& who) {
  if (r.code == core::AuthResult::kOk && out.handshake == Handshake::kProofSent) {
    out.up = true;
    out.backoff_ms = 100;
    out.handshake_deadline.reset();
    NoteInstance(out.addr.id, out.instance_id);
    // A fresh detector: silence from before this connection says nothing about it.
    // The handshake itself is the first sign of life, so a peer that falls silent
    // right after it is still suspected.
    out.detector = core::PhiAccrualDetector(config_.heartbeat_interval_ms);
    out.detector.Heartbeat(loop_.NowMs());
    out.clock.Clear();
    LOG_INFO << who << " is up (authenticated" << (identity_.insecure ? ": NO, insecure mode" : "")
             << "; protocol " << out.version << ")";
    Report(out);
    if (out.version >= core::MessageSince<core::PeerInfo>()) {
      Send(out.addr.id, core::PeerInfo{core::kMinPeerProtocolVersion, MaxVersion(), kBuildName});
    }
    return true;
  }
  ++stats_.handshakes_refused;
  if (const uint32_t fallback = FallbackVersion(out, r.reason); fallback != 0) {
    // A build that does not negotiate (protocol 4) named the version it speaks; this
    // node speaks it too: the next attempt offers it (after the usual short backoff).
    LOG_INFO << who << " speaks only peer protocol " << fallback << " (this node offered "
             << out.offer << "); offering " << fallback;
    out.offer = fallback;
    return false;
  }
  // A duplicate-node verdict stops this node only from an acceptor that proved it holds
  // the secret (kProofSent: its proof verified). From anyone else -- whoever squats a
  // stopped member's port, or answers a gossiped address -- or in insecure mode, where
  // nobody proves anything, it is an ordinary refusal: a stranger must not be able to
  // shut a member down.
  if (r.code == core::AuthResult::kDuplicateNode && out.handshake == Handshake::kProofSent &&
      !identity_.insecure) {
    LOG_ERROR << who << " refuses this node: " << r.reason;
    if (on_fatal_) on_fatal_(r.reason);
  } else {
    LOG_WARN << who << " refused the handshake: " << r.reason;
  }
  return false;
}

bool PeerTransport::OnOutgoingHandshake(Outgoing& out, const core::PeerMessage& msg) {
  const std::string who = "peer " + out.addr.id + " (" + out.addr.host + ":" +
                          std::to_string(out.addr.port) + ")";
  std::string why;
  if (const auto* r = std::get_if<core::AuthResult>(&msg)) return OnOutgoingResult(out, *r, who);
  if (const auto* hello = std::get_if<core::AuthHello>(&msg)) {
    if (out.handshake != Handshake::kHelloSent) why = "a second AuthHello";
    else if (hello->node_id != out.addr.id) why = "answers as '" + hello->node_id + "'";
    else if (AcceptHello(*hello, &why)) CheckAnswer(out, hello->protocol_version, &why);
    if (why.empty()) {
      out.version = hello->protocol_version;
      out.peer_nonce = hello->nonce;
      out.instance_id = hello->instance_id;
      out.handshake = Handshake::kGotHello;
      return true;
    }
  } else if (const auto* proof = std::get_if<core::AuthProof>(&msg)) {
    const ProofInput in{identity_.cluster_id, config_.node_id, out.addr.id, out.nonce,
                        out.peer_nonce};
    std::string where;
    if (out.handshake != Handshake::kGotHello) {
      why = "an AuthProof out of order";
    } else if (!identity_.insecure &&
               !VerifyProof(identity_.secrets, proof->macs, ProofRole::kAcceptor, in)) {
      ++stats_.auth_failures;
      why = "its proof does not verify: it does not hold this cluster's secret";
    } else if (OtherInstanceLive(out.addr.id, out.instance_id, 0, &where)) {
      ++stats_.duplicate_nodes_refused;
      why = "node id '" + out.addr.id + "' answers from another data directory (instance " +
            out.instance_id + ") than the live " + where;
    }
    if (why.empty()) {
      core::AuthProof mine;
      if (!identity_.insecure) {
        mine.macs = ComputeProofs(identity_.secrets, ProofRole::kInitiator, in);
      }
      WriteFrame(*out.conn, mine);
      out.handshake = Handshake::kProofSent;
      return true;
    }
  } else {
    why = "an unexpected message in the handshake";
  }
  ++stats_.handshakes_refused;
  LOG_WARN << who << ": handshake refused: " << why;
  return false;
}

uint32_t PeerTransport::MaxVersion() const {
  return config_.max_protocol_version != 0 ? static_cast<uint32_t>(config_.max_protocol_version)
                                           : core::kPeerProtocolVersion;
}

bool PeerTransport::Negotiate(uint32_t offered, uint32_t* version, std::string* why) const {
  if (MaxVersion() == core::kLastExactPeerProtocolVersion) {
    // Capped at the last exact-match version: behave as its builds did, word for word
    // (a newer dialler reads the reason and offers this version instead).
    if (offered == MaxVersion()) *version = offered;
    else *why = "protocol version " + std::to_string(offered) + ", expected " + std::to_string(MaxVersion());
  } else if (offered < core::kMinPeerProtocolVersion) {
    *why = "protocol version " + std::to_string(offered) + "; this node speaks " +
           std::to_string(core::kMinPeerProtocolVersion) + " to " + std::to_string(MaxVersion());
  } else {
    *version = std::min(offered, MaxVersion());
  }
  return why->empty();
}

uint32_t PeerTransport::FallbackVersion(const Outgoing& out, const std::string& reason) const {
  // The reason of an exact-match acceptor (Negotiate's first branch, or a build of
  // protocol 4): "protocol version X, expected N".
  const std::string head = "protocol version " + std::to_string(out.offer) + ", expected ";
  if (reason.rfind(head, 0) != 0) return 0;
  const std::string rest = reason.substr(head.size());
  uint32_t n = 0;
  for (char c : rest) {
    if (c < '0' || c > '9' || n > 1000000) return 0;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (rest.empty() || n < core::kMinPeerProtocolVersion || n >= out.offer) return 0;
  return n;
}

bool PeerTransport::CheckAnswer(const Outgoing& out, uint32_t answered, std::string* why) const {
  // The acceptor answers with the version of this connection: at most what was offered.
  // An exact-match build answers with its own, which must then be the one offered.
  if (answered < core::kMinPeerProtocolVersion || answered > out.offer ||
      (MaxVersion() == core::kLastExactPeerProtocolVersion && answered != out.offer)) {
    *why = "protocol version " + std::to_string(answered) + ", expected " +
           (answered > out.offer || MaxVersion() == core::kLastExactPeerProtocolVersion
                ? std::to_string(out.offer)
                : std::to_string(core::kMinPeerProtocolVersion) + " to " + std::to_string(out.offer));
  }
  return why->empty();
}

bool PeerTransport::AcceptHello(const core::AuthHello& hello, std::string* why) const {
  if (hello.cluster != config_.cluster_name) {
    *why = "cluster '" + hello.cluster + "', expected '" + config_.cluster_name + "'";
  } else if (!identity_.cluster_id.empty() && hello.cluster_id != identity_.cluster_id) {
    *why = "cluster id " + (hello.cluster_id.empty() ? std::string("(none)") : ToHex(hello.cluster_id)) +
           ", this node is in cluster " + ToHex(identity_.cluster_id);
  } else if (hello.data_format != identity_.data_format) {
    // Members of other placements would disagree on every key's owners.
    *why = "data " + DescribeDataFormat(hello.data_format) + ", this node's data directory is " +
           DescribeDataFormat(identity_.data_format) +
           ": one cluster places every key the same way (a new node joins with the cluster's "
           "format: storage.data_format)";
  } else if (hello.node_id.empty() || hello.node_id.size() > 64 || hello.node_id == config_.node_id) {
    *why = "node id '" + hello.node_id + "' is this node's own, empty or too long";
  } else if (hello.nonce.size() != kNonceBytes || hello.instance_id.empty()) {
    *why = "a malformed AuthHello";
  }
  return why->empty();
}

bool PeerTransport::OtherInstanceLive(const std::string& id, const std::string& instance,
                                      uint64_t except, std::string* where) const {
  auto out = outgoing_.find(id);
  if (out != outgoing_.end() && out->second.up && out->second.instance_id != instance) {
    *where = "instance " + out->second.instance_id + " at " + out->second.addr.host + ":" +
             std::to_string(out->second.addr.port);
    return true;
  }
  for (const auto& [key, in] : incoming_) {
    if (key == except || in.peer_id != id || in.refused) continue;
    if (in.hello.instance_id != instance) {
      *where = "instance " + in.hello.instance_id + " connected from " + in.conn->peer();
      return true;
    }
  }
  return false;
}

void PeerTransport::NoteInstance(const std::string& id, const std::string& instance) {
  auto [it, fresh] = instances_.emplace(id, instance);
  if (!fresh && it->second != instance) {
    LOG_WARN << "member " << id << " now runs another data directory (instance " << instance
             << ", was " << it->second << "): a replaced node";
    it->second = instance;
  }
}

void PeerTransport::RefuseIncoming(Incoming& in, uint32_t code, const std::string& reason) {
  in.refused = true;
  in.frames.Reset(nullptr);
  WriteFrame(*in.conn, core::AuthResult{code, reason});
  in.conn->CloseAfterWrites();
}

void PeerTransport::OnAccept(std::unique_ptr<net::TcpConnection> conn) {
  size_t handshaking = 0;
  uint64_t oldest = 0;
  for (const auto& [key, in] : incoming_) {
    if (!in.peer_id.empty() || in.refused || in.conn->closing()) continue;
    ++handshaking;
    if (oldest == 0) oldest = key;  // keys grow with arrival
  }
  if (handshaking >= static_cast<size_t>(config_.max_handshaking_peers) && oldest != 0) {
    // Full: the oldest handshake goes, not the newcomer. A member's handshake takes one
    // round trip, so strangers holding every slot cannot keep a member out for long.
    ++stats_.connections_refused;
    Incoming& victim = incoming_[oldest];
    if (AllowStrangerLog()) LOG_WARN << "peer connection from " << victim.conn->peer()
             << " closed: cluster.max_handshaking_peers (" << config_.max_handshaking_peers
             << ") connections are shaking hands; making room for " << conn->peer();
    victim.frames.Reset(nullptr);
    victim.conn->Close();
  }
  const uint64_t id = next_incoming_++;
  Incoming& in = incoming_[id];
  in.conn = std::move(conn);
  in.frames.budget = &budget_;
  in.frames.Reset(in.conn.get());
  in.handshake_deadline = std::make_unique<net::Timer>(loop_, [this, id] {
    auto it = incoming_.find(id);
    if (it == incoming_.end() || !it->second.peer_id.empty()) return;
    ++stats_.handshakes_timed_out;
    if (AllowStrangerLog()) LOG_WARN << "peer connection from " << it->second.conn->peer() << ": no handshake within "
             << kHandshakeTimeoutMs << " ms; closing";
    it->second.frames.Reset(nullptr);
    it->second.conn->Close();
  });
  in.handshake_deadline->Start(kHandshakeTimeoutMs, 0);
  in.conn->Start(
      [this, id](std::string_view data) {
        Incoming& i = incoming_[id];
        if (i.refused) return;
        if (!i.frames.Feed(data, FrameLimit(!i.peer_id.empty()),
                           [&](std::string_view f) { return OnIncomingFrame(id, f); })) {
          if (i.refused) return;  // the refusal is on its way, then the connection closes
          ++stats_.bad_frames;
          if (AllowStrangerLog()) LOG_WARN << "peer connection from " << i.conn->peer() << ": bad frame or handshake; closing";
          i.conn->Close();
        }
      },
      [this, id] { incoming_.erase(id); });
}

bool PeerTransport::OnIncomingFrame(uint64_t id, std::string_view frame) {
  Incoming& in = incoming_[id];
  if (in.peer_id.empty()) {
    // Not authenticated: only handshake messages are decoded.
    Result<core::PeerMessage> msg = wire::DecodeHandshakeMessage(frame);
    if (!msg.ok()) {
      ++stats_.handshakes_refused;
      // Closed without an answer: whatever sent it does not speak this handshake.
      if (AllowStrangerLog()) LOG_WARN << "peer connection from " << in.conn->peer() << " refused: " << msg.status().message();
      in.refused = true;
      in.frames.Reset(nullptr);
      in.conn->Close();
      return false;
    }
    return OnIncomingHandshake(id, in, *msg);
  }
  wire::PeerRefusal refusal;
  Result<core::PeerMessage> msg = wire::DecodePeerMessage(frame, &refusal, in.version);
  if (!msg.ok() && msg.status().code() == Status::Code::kInvalidArgument) {
    // One bad value is not a broken stream: refuse that message, keep the connection.
    ++stats_.messages_refused;
    if (on_refused_) on_refused_(in.peer_id, refusal, msg.status().message());
    return true;
  }
  if (!msg.ok()) {
    LOG_WARN << "peer " << in.peer_id << ": " << msg.status().message();
    return false;
  }
  if (std::holds_alternative<core::AuthHello>(*msg) || std::holds_alternative<core::AuthProof>(*msg) ||
      std::holds_alternative<core::AuthResult>(*msg)) {
    LOG_WARN << "peer " << in.peer_id << ": a handshake message after the handshake";
    return false;
  }
  ++stats_.messages_received;
  // Every message from a peer shows it is alive, not just heartbeats; only heartbeats
  // are samples of the detector's model of their spacing (core/failure_detector.h).
  const bool heartbeat = std::holds_alternative<core::Heartbeat>(*msg);
  auto out = outgoing_.find(in.peer_id);
  if (out != outgoing_.end()) {
    if (heartbeat) out->second.detector.Heartbeat(loop_.NowMs());
    else out->second.detector.SignOfLife(loop_.NowMs());
  }
  if (heartbeat) return true;
  if (std::holds_alternative<core::Hello>(*msg)) return true;
  if (const auto* probe = std::get_if<core::ClockProbe>(&*msg)) {
    if (wall_ms_) Send(in.peer_id, core::ClockEcho{probe->sent_wall_ms, wall_ms_()});
    return true;
  }
  if (const auto* echo = std::get_if<core::ClockEcho>(&*msg)) {
    OnClockEcho(in.peer_id, *echo);
    return true;
  }
  if (const auto* info = std::get_if<core::PeerInfo>(&*msg)) {
    peer_info_[in.peer_id] = *info;
    return true;
  }
  on_message_(in.peer_id, *msg);
  return true;
}

std::string PeerTransport::CheckIncomingProof(uint64_t id, const Incoming& in,
                                              const core::AuthProof& proof, uint32_t* code) {
  std::string where;
  const ProofInput pin{identity_.cluster_id, in.hello.node_id, config_.node_id, in.hello.nonce,
                       in.nonce};
  if (in.hello.node_id.empty()) return "an AuthProof before AuthHello";
  if (!identity_.insecure &&
      !VerifyProof(identity_.secrets, proof.macs, ProofRole::kInitiator, pin)) {
    ++stats_.auth_failures;
    return "authentication failed: the proof does not verify against this cluster's secret";
  }
  if (OtherInstanceLive(in.hello.node_id, in.hello.instance_id, id, &where)) {
    ++stats_.duplicate_nodes_refused;
    *code = core::AuthResult::kDuplicateNode;
    return "node id '" + in.hello.node_id + "' is already in use in cluster '" +
           config_.cluster_name + "' by a live member (" + where +
           "); this is another data directory (instance " + in.hello.instance_id +
           "): give this node its own node.id";
  }
  size_t authenticated = 0;
  for (const auto& [key, other] : incoming_) authenticated += other.peer_id.empty() ? 0 : 1;
  if (authenticated >= static_cast<size_t>(config_.max_peer_connections)) {
    ++stats_.connections_refused;
    return "cluster.max_peer_connections (" + std::to_string(config_.max_peer_connections) +
           ") authenticated connections are open";
  }
  return "";
}

bool PeerTransport::OnIncomingHandshake(uint64_t id, Incoming& in, const core::PeerMessage& msg) {
  const std::string from = in.conn->peer();
  std::string why;
  uint32_t code = core::AuthResult::kRefused;
  if (const auto* hello = std::get_if<core::AuthHello>(&msg)) {
    if (!in.hello.node_id.empty()) {
      why = "a second AuthHello";
    } else if (AcceptHello(*hello, &why) && Negotiate(hello->protocol_version, &in.version, &why)) {
      if (!RandomBytes(kNonceBytes, &in.nonce)) {
        why = "the random number generator failed";
      } else {
        in.hello = *hello;
        const ProofInput pin{identity_.cluster_id, hello->node_id, config_.node_id, hello->nonce,
                             in.nonce};
        core::AuthProof proof;
        if (!identity_.insecure) {
          proof.macs = ComputeProofs(identity_.secrets, ProofRole::kAcceptor, pin);
        }
        WriteFrame(*in.conn, MakeHello(in.nonce, in.version));
        WriteFrame(*in.conn, proof);
        return true;
      }
    }
  } else if (const auto* proof = std::get_if<core::AuthProof>(&msg)) {
    why = CheckIncomingProof(id, in, *proof, &code);
    if (why.empty()) {
      in.peer_id = in.hello.node_id;
      in.handshake_deadline.reset();
      NoteInstance(in.peer_id, in.hello.instance_id);
      WriteFrame(*in.conn, core::AuthResult{core::AuthResult::kOk, ""});
      LOG_INFO << "peer connection from " << from << " authenticated as " << in.peer_id
               << (identity_.insecure ? " (NOT checked: insecure mode)" : "") << ", protocol "
               << in.version;
      return true;
    }
  } else {
    why = "an unexpected message in the handshake";
  }
  ++stats_.handshakes_refused;
  if (code == core::AuthResult::kDuplicateNode) {
    LOG_ERROR << "peer connection from " << from << " refused: " << why;
  } else {
    if (AllowStrangerLog()) LOG_WARN << "peer connection from " << from << " refused: " << why;
  }
  RefuseIncoming(in, code, why);
  return false;
}

bool PeerTransport::AllowStrangerLog() {
  // At most kStrangerLogLinesPerSecond lines a second about connections that have not
  // authenticated (a flood of strangers must not fill the disk), then one line saying
  // how many were left out. Every refusal is still counted in PeerStats.
  const int64_t now = loop_.NowMs();
  if (now - stranger_log_window_ms_ >= 1000) {
    if (stranger_log_dropped_ > 0) {
      LOG_WARN << stranger_log_dropped_ << " more lines about refused peer connections left out";
    }
    stranger_log_window_ms_ = now;
    stranger_log_lines_ = 0;
    stranger_log_dropped_ = 0;
  }
  if (stranger_log_lines_ < kStrangerLogLinesPerSecond) {
    ++stranger_log_lines_;
    return true;
  }
  ++stranger_log_dropped_;
  return false;
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
  if (wire::MessageSince(msg) > it->second.version) {
    // The peer's build could not read it: refused here, with a reason in the log.
    const uint64_t n = ++stats_.messages_unsupported;
    if ((n & (n - 1)) == 0) {  // the 1st, 2nd, 4th, 8th, ...: bounded, never silent
      LOG_WARN << "peer " << to << ": not sending a message of type "
               << static_cast<unsigned>(std::visit([](const auto& m) { return m.kType; }, msg))
               << ": it needs peer protocol " << wire::MessageSince(msg)
               << " and this connection speaks " << it->second.version;
    }
    return;
  }
  // Encoded in place after a header patched once its length is known.
  std::string& pending = it->second.pending;
  const size_t start = pending.size();
  pending.append(4, '\0');
  wire::AppendPeerMessage(&pending, msg, it->second.version);
  const size_t n = pending.size() - start - 4;
  if (n > MaxFrame()) {
    // Siblings merged from both sides of a partition can outgrow the object cap; the
    // peer would refuse the frame and drop the connection with everything queued on it.
    pending.resize(start);
    ++stats_.messages_oversized;
    LOG_WARN << "peer " << to << ": not sending a " << n << "-byte message (limit "
             << MaxFrame() << ")";
    return;
  }
  ++stats_.messages_sent;
  pending[start] = static_cast<char>(n >> 24);
  pending[start + 1] = static_cast<char>(n >> 16);
  pending[start + 2] = static_cast<char>(n >> 8);
  pending[start + 3] = static_cast<char>(n);
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
    std::snprintf(phi, sizeof phi, "%.1f", PhiOf(o));
    // The state the node acts on (as last reported to it), and phi as of now.
    const char* state = !o.up ? "down" : o.reported ? "up" : "suspect";
    std::string clock;
    if (o.up && o.clock.known()) {
      const core::OffsetSample s = o.clock.Best();
      clock = ",offset_ms=" + std::to_string(s.offset_ms) +
              ",offset_uncertainty_ms=" + std::to_string(s.uncertainty_ms);
    }
    std::string version;
    if (o.up) version = ",protocol=" + std::to_string(o.version);
    auto info = peer_info_.find(id);
    if (info != peer_info_.end()) {
      version += ",speaks=" + std::to_string(info->second.min_version) + "-" +
                 std::to_string(info->second.max_version) + ",build=" + info->second.build;
    }
    out.push_back("id=" + id + ",addr=" + o.addr.host + ":" + std::to_string(o.addr.port) +
                  ",state=" + state + ",phi=" + phi + clock + version);
  }
  return out;
}

}  // namespace itsuka::server
