// The peer transport: framed msgpack messages between nodes over TCP.
//
// Every node keeps one outgoing connection to each other member and accepts theirs.
// It sends on its outgoing connection and receives on the accepted ones. Frames are a
// 4-byte big-endian length and an encoded core::PeerMessage.
//
// Versions (core/messages.h). The dialler's AuthHello offers the newest protocol version
// it speaks (MaxVersion: cluster.max_protocol_version, or the build's newest); the
// acceptor answers in its own AuthHello with the version of the connection, the lower
// of the offer and its own newest, or refuses an offer below the oldest it speaks. A
// node capped at the last exact-match version (4) behaves as builds of that version
// did: it offers 4, accepts only 4 and refuses anything else with "protocol version X,
// expected 4"; a dialler refused so offers that version on its next attempt
// (FallbackVersion), and offers its newest again after a connection that was up drops
// (the peer may have been upgraded). Each connection then carries its version: what is
// sent on it is encoded for it (fields added later left out) and a message type added
// later is not sent but counted (messages_unsupported, logged); what arrives on it is
// decoded as that version's builds decode. Connections carry data one way, so a pair
// of peers agrees on a version per direction; both come out the same.
//
// Authentication (protocol version 2 on). Each connection starts with a mutual
// challenge-response over the cluster secret (peer_auth.h):
//   dialler  -> AuthHello (cluster name and id, version, node id, instance id, nonce)
//   acceptor -> AuthHello (its own, fresh nonce), AuthProof (role "acceptor")
//   dialler  -> AuthProof (role "initiator"), after verifying the acceptor's
//   acceptor -> AuthResult (ok, or why not), after verifying the dialler's
// The dialler verifies the acceptor before proving anything or sending any message, so
// an address a stranger controls (a bad seed, a forged gossip entry) learns nothing and
// receives nothing. The acceptor decodes nothing but handshake messages until the
// dialler's proof verifies. A peer with another cluster name, cluster id or version, a
// dialled address answering as another node, or a proof that does not verify is refused
// (logged without secrets, counted in INFO). In insecure mode (cluster.insecure_no_auth)
// proofs are empty and not checked; a secure node refuses such a peer.
//
// Duplicate node ids: the instance id names a data directory. A node that already has
// an authenticated, live connection with member X running instance I refuses another
// instance of X (AuthResult kDuplicateNode, "node id X is in use by ..."); the refused
// dialler reports it through on_fatal (the node exits). A restarted node (same data
// directory) is accepted at once; a replaced one (new instance while the old one is
// not connected) is accepted and logged.
//
// Any other node id is accepted: members are learned by gossip (a joining node is
// unknown until its first gossip message), and AddPeer opens the outgoing connection to
// them. A peer is "up" while the outgoing connection to it has completed its handshake;
// when it drops, the transport reconnects with exponential backoff (100 ms doubling to
// 1 s; a failed dial costs nothing, and a healed peer is redialled within about a
// second). A peer nothing was heard from for kSilenceReconnectMs (at least ten
// heartbeat intervals) has its connections dropped, both the outgoing one and those it
// dialled here, and is dialled again: a connection that carried nothing through a
// partition (iptables DROP, a cable) stays open, but TCP's retransmission backoff can
// keep it silent for as long again after the partition heals (tens of seconds), while
// a fresh connection works at once -- and a peer that still hears this node learns from
// the closed connection that it must dial again too. Messages for a peer that is down, or whose send queue is over its bound, are
// dropped (counted): the coordinator's timeout turns them into -TIMEOUT, never into
// unbounded memory. Heartbeats go to every peer each cluster.heartbeat_interval_ms; a
// phi-accrual detector per peer turns their arrival into suspicion (any message from the
// peer is a sign of life; heartbeats alone shape the model). A peer is reported
// reachable while it is connected and not suspected. This node's own loop lag, seen as
// the lateness of its heartbeat timer, is not blamed on peers (core::LocalPauseGuard):
// no new suspicion in a tick over one interval late, and the recent worst lateness
// (capped at kMaxAcceptedPauseMs) is accepted as a pause by every detector.
//
// Memory. Until a connection has authenticated, its frames are at most
// kMaxHandshakeFrame bytes and the handshake must finish within kHandshakeTimeoutMs; at
// most cluster.max_handshaking_peers accepted connections may be handshaking and at most
// cluster.max_peer_connections authenticated, counted apart, so strangers never take a
// member's slot. The receive buffers of all connections together are bounded by
// cluster.max_peer_buffer_bytes: a frame is admitted (its announced length reserved)
// only within that budget, otherwise its connection stops reading until budget frees
// up (backpressure: nothing is dropped). A single frame is always admitted when no
// other connection holds budget, so the largest frame still gets through.
// A message whose frame would exceed what a peer accepts (MaxFrame) is not sent but
// counted, because the receiver would close the whole connection over it.
//
// A frame that is not a message (wire::DecodePeerMessage kCorruption) closes the
// connection; a message whose values the decoder refuses (kInvalidArgument) is handed
// to the refused handler and the connection stays, so one bad value never costs a
// connection and everything queued on it. Each heartbeat is followed by a ClockProbe
// that the peer echoes (ClockEcho); the echoes give each peer's clock offset
// (core/clock_offset.h), shown by Describe and warned about past
// cluster.max_clock_offset_ms.
//
// Thread-compatible: the event-loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/clock_offset.h"
#include "core/failure_detector.h"
#include "core/messages.h"
#include "itsuka/config.h"
#include "net/loop.h"
#include "net/tcp.h"
#include "wire/peer_codec.h"

namespace itsuka::server {

struct PeerStats {
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t messages_dropped = 0;  // peer down or its queue full
  uint64_t handshakes_refused = 0;
  uint64_t bad_frames = 0;
  uint64_t messages_oversized = 0;     // larger than a peer accepts: never sent
  uint64_t connections_refused = 0;    // over cluster.max_peer_connections
  uint64_t handshakes_timed_out = 0;   // no handshake within kHandshakeTimeoutMs
  uint64_t auth_failures = 0;          // a proof that did not verify (either direction)
  uint64_t duplicate_nodes_refused = 0;  // another instance of a connected member
  uint64_t handshaking = 0;            // accepted connections not yet authenticated
  uint64_t authenticated = 0;          // accepted connections authenticated
  uint64_t buffer_bytes = 0;           // receive buffers charged to the budget now
  uint64_t reads_paused = 0;           // times a connection waited for buffer budget
  uint64_t messages_refused = 0;       // decoded, values refused; connection kept
  uint64_t local_pauses = 0;      // heartbeat ticks over one interval late (LocalPauseGuard)
  uint64_t convictions_held = 0;  // suspicions not acted on in such a tick
  uint64_t messages_unsupported = 0;   // newer than the peer's protocol version: not sent
  uint64_t silent_reconnects = 0;      // connections dropped after kSilenceReconnectMs of silence
};

// What this node proves and checks in the handshake (peer_auth.h).
struct PeerIdentity {
  bool insecure = false;             // cluster.insecure_no_auth: no proofs
  std::string cluster_id;            // raw bytes; empty only in insecure mode
  std::vector<std::string> secrets;  // raw bytes; empty only in insecure mode
  std::string instance_id;           // this data directory's
  // The data directory's format (docs/DESIGN.md 4.12): its key placement is part of the
  // cluster's identity, so a peer of another format is refused in the handshake.
  uint32_t data_format = 2;
};

class PeerTransport {
 public:
  static constexpr size_t kMaxHandshakeFrame = 4 << 10;
  static constexpr uint64_t kHandshakeTimeoutMs = 3000;
  // The most local loop lag the detectors accept as a pause (at least 10 heartbeat
  // intervals if those are longer): bounds how much later a dead peer is suspected
  // while this node is overloaded.
  static constexpr int64_t kMaxAcceptedPauseMs = 2000;
  static constexpr const char* kBuildName = "itsuka 0.1.0";  // PeerInfo.build
  // Silence after which a connected peer's connections are replaced (see above).
  static constexpr int64_t kSilenceReconnectMs = 3000;
  static constexpr uint64_t kMaxBackoffMs = 1000;

  using MessageFn = std::function<void(const std::string& from, const core::PeerMessage&)>;
  using UpFn = std::function<void(const std::string& node, bool up)>;
  // This node must not go on (another live instance already uses its node id).
  using FatalFn = std::function<void(const std::string& why)>;
  // A frame from a handshaken peer that decoded but whose values the decoder refused
  // (wire::DecodePeerMessage kInvalidArgument): the connection stays; the node answers.
  using RefusedFn = std::function<void(const std::string& from, const wire::PeerRefusal& refusal,
                                       const std::string& why)>;

  PeerTransport(net::Loop& loop, const Config& config, PeerIdentity identity,
                MessageFn on_message, UpFn on_up, FatalFn on_fatal);
  ~PeerTransport();

  // With a context (tls.peers), every peer connection, accepted or dialled, uses TLS
  // and both sides' certificates are verified; a plain-TCP peer fails the handshake.
  // Call before Start().
  void SetTls(std::shared_ptr<net::TlsContext> tls) { tls_ = std::move(tls); }
  void SetRefusedHandler(RefusedFn fn) { on_refused_ = std::move(fn); }
  // Clock offsets (core/clock_offset.h): with a wall clock set, every heartbeat is
  // followed by a ClockProbe, peers echo it, and each echo refines that peer's offset
  // estimate. Past cluster.max_clock_offset_ms a warning is logged (once per crossing).
  void SetWallClock(std::function<int64_t()> wall_ms) { wall_ms_ = std::move(wall_ms); }
  // The peer's offset estimate (its clock minus this node's); false if none yet or the
  // peer is not connected.
  bool ClockOffset(const std::string& node, core::OffsetSample* out) const;
  // Binds the peer port and starts connecting to every seed.
  Status Start();
  // Starts connecting to a member learned by gossip (no-op if known, or this node).
  // Returns true if the peer is new.
  bool AddPeer(const std::string& id, const std::string& host, int port);
  // Queues a message; Flush() hands everything queued to the sockets, one write per
  // peer (the node calls it once per loop round, after its commit).
  // With testing.replica_write_delay_ms, ReplicaWrite messages wait that long first.
  void Send(const std::string& to, const core::PeerMessage& msg);
  void Flush();
  bool IsUp(const std::string& node) const;
  const PeerStats& stats() const;
  bool insecure() const { return identity_.insecure; }
  const std::string& cluster_id() const { return identity_.cluster_id; }
  // One line per member but this node: "id=...,addr=...,state=up|suspect|down,phi=..."
  // plus ",offset_ms=...,offset_uncertainty_ms=..." once its clock offset is known.
  std::vector<std::string> Describe() const;

 private:
  struct FrameBuffer;
  // The node-wide receive-buffer budget (cluster.max_peer_buffer_bytes).
  struct BufferBudget {
    size_t limit = 0;
    size_t used = 0;         // charged by every FrameBuffer
    size_t paused_bytes = 0;  // ... of which by paused ones
    uint64_t pauses = 0;
    std::deque<FrameBuffer*> paused;  // waiting for budget, in arrival order
    // Resumes paused buffers while budget allows (the first one always, if no running
    // buffer holds budget).
    void MaybeResume();
  };
  struct FrameBuffer {
    BufferBudget* budget = nullptr;
    net::TcpConnection* conn = nullptr;  // paused and resumed for the budget
    std::string buf;
    size_t charged = 0;
    bool paused = false;
    FrameBuffer() = default;
    FrameBuffer(const FrameBuffer&) = delete;
    FrameBuffer& operator=(const FrameBuffer&) = delete;
    ~FrameBuffer() { Reset(nullptr); }
    // Empties the buffer, gives its budget back and attaches it to `c` (or nothing).
    void Reset(net::TcpConnection* c);
    // Appends bytes; calls on_frame for each complete frame. False on a bad frame
    // (or when on_frame returns false). Pauses the connection when the next frame does
    // not fit the budget.
    bool Feed(std::string_view data, size_t max_frame,
              const std::function<bool(std::string_view)>& on_frame);
    // Charges what the buffer holds plus the rest of its incomplete frame.
    void Recharge();
  };
  enum class Handshake { kHelloSent, kGotHello, kProofSent };
  struct Outgoing {
    SeedAddress addr;
    std::unique_ptr<net::TcpConnection> conn;
    std::unique_ptr<net::Timer> retry;
    std::unique_ptr<net::Timer> handshake_deadline;
    FrameBuffer frames;
    Handshake handshake = Handshake::kHelloSent;
    std::string nonce;        // ours, this connection's
    std::string peer_nonce;   // the acceptor's
    std::string instance_id;  // the acceptor's instance, from its AuthHello
    uint32_t offer = 0;       // protocol version the next hello offers (0: MaxVersion())
    uint32_t version = 0;     // this connection's, agreed in the handshake
    bool up = false;         // connected and authenticated
    bool reported = false;   // what on_up_ was last told
    uint64_t backoff_ms = 100;
    std::string pending;  // frames queued by Send since the last Flush
    core::PhiAccrualDetector detector;
    core::OffsetFilter clock;  // cleared on reconnect
    bool clock_warned = false;
  };
  struct Incoming {
    std::unique_ptr<net::TcpConnection> conn;
    FrameBuffer frames;
    std::string peer_id;  // set once authenticated
    core::AuthHello hello;  // the dialler's, once received
    uint32_t version = 0;   // this connection's, agreed in the handshake
    std::string nonce;      // ours
    bool refused = false;   // a refusal is being written; the connection then closes
    std::unique_ptr<net::Timer> handshake_deadline;
  };

  void Connect(Outgoing& out);
  void OnOutgoingClosed(Outgoing& out);
  void OnAccept(std::unique_ptr<net::TcpConnection> conn);
  bool OnIncomingFrame(uint64_t id, std::string_view frame);
  bool OnIncomingHandshake(uint64_t id, Incoming& in, const core::PeerMessage& msg);
  // OnIncomingHandshake's checks of the initiator's AuthProof on connection `id`: why
  // it is refused (*code: how, kRefused unless changed), or "" if it is accepted.
  std::string CheckIncomingProof(uint64_t id, const Incoming& in, const core::AuthProof& proof,
                                 uint32_t* code);
  bool OnOutgoingFrame(Outgoing& out, std::string_view frame);
  bool OnOutgoingHandshake(Outgoing& out, const core::PeerMessage& msg);
  // OnOutgoingHandshake's step for the acceptor's verdict: up if it accepted the proof
  // this node sent; else refused (a duplicate-node verdict from a proven acceptor is
  // fatal). `who` names the peer in the log.
  bool OnOutgoingResult(Outgoing& out, const core::AuthResult& r, const std::string& who);
  // Checks an AuthHello; on refusal returns false with *why.
  bool AcceptHello(const core::AuthHello& hello, std::string* why) const;
  core::AuthHello MakeHello(const std::string& nonce, uint32_t version) const;
  // The newest protocol version this node speaks (cluster.max_protocol_version).
  uint32_t MaxVersion() const;
  // The acceptor's choice for a dialler offering `offered`: the lower of that and
  // MaxVersion() (exactly MaxVersion() when capped at the last exact-match version);
  // false with *why if this node speaks none of it.
  bool Negotiate(uint32_t offered, uint32_t* version, std::string* why) const;
  // The dialler's check of the version the acceptor answered with.
  bool CheckAnswer(const Outgoing& out, uint32_t answered, std::string* why) const;
  // An exact-match acceptor's refusal names the version it speaks; if this node speaks
  // it too (and it is below what was offered), that version; else 0.
  uint32_t FallbackVersion(const Outgoing& out, const std::string& reason) const;
  // Another live, authenticated instance of member `id` than `instance`: describes it
  // in *where and returns true. `except` is an incoming connection not to count.
  bool OtherInstanceLive(const std::string& id, const std::string& instance, uint64_t except,
                         std::string* where) const;
  // Writes a refusal and closes the incoming connection once it is sent.
  void RefuseIncoming(Incoming& in, uint32_t code, const std::string& reason);
  // Logs (and remembers) a member's instance id, noting a replaced data directory.
  void NoteInstance(const std::string& id, const std::string& instance);
  // Rate limit of log lines about unauthenticated connections (AllowStrangerLog).
  bool AllowStrangerLog();
  static constexpr uint64_t kStrangerLogLinesPerSecond = 10;
  static void AppendFrame(std::string* out, std::string_view body);
  void WriteFrame(net::TcpConnection& conn, const core::PeerMessage& msg);
  size_t MaxFrame() const;
  // The frame limit for a connection: small until its handshake is done.
  size_t FrameLimit(bool handshaken) const { return handshaken ? MaxFrame() : kMaxHandshakeFrame; }
  // The peer's phi now, with the pause the local loop's recent lag earns it.
  double PhiOf(const Outgoing& out) const;
  bool Suspected(const Outgoing& out) const;
  // Tells on_up_ if the peer's reachability (connected and not suspected) changed.
  void Report(Outgoing& out);
  void OnHeartbeatTimer();
  int64_t SilenceLimitMs() const;
  // Closes the connections of peer `id`, silent past SilenceLimitMs(), to dial it anew.
  void DropSilent(const std::string& id, Outgoing& out);
  void OnClockEcho(const std::string& from, const core::ClockEcho& echo);
  // Queues for the next Flush (Send without the test-only delay).
  void Enqueue(const std::string& to, const core::PeerMessage& msg);
  void ReleaseDelayed();

  net::Loop& loop_;
  const Config& config_;
  PeerIdentity identity_;
  MessageFn on_message_;
  UpFn on_up_;
  FatalFn on_fatal_;
  int64_t stranger_log_window_ms_ = 0;
  uint64_t stranger_log_lines_ = 0;
  uint64_t stranger_log_dropped_ = 0;
  BufferBudget budget_;
  std::map<std::string, std::string> instances_;  // member -> last authenticated instance
  std::map<std::string, core::PeerInfo> peer_info_;  // member -> what its dialler said
  RefusedFn on_refused_;
  std::function<int64_t()> wall_ms_;
  std::unique_ptr<net::TcpListener> listener_;
  std::shared_ptr<net::TlsContext> tls_;
  std::map<std::string, Outgoing> outgoing_;
  std::map<uint64_t, Incoming> incoming_;
  uint64_t next_incoming_ = 1;
  mutable PeerStats stats_;
  std::unique_ptr<net::Timer> heartbeat_;
  // testing.replica_write_delay_ms: (due time, destination, message), in due order.
  struct Delayed {
    int64_t due_ms;
    std::string to;
    core::PeerMessage msg;
  };
  std::multimap<int64_t, Delayed> delayed_;  // by due time
  std::mt19937_64 delay_rng_{std::random_device{}()};
  std::unique_ptr<net::Timer> delay_timer_;
  core::LocalPauseGuard pause_guard_;
  int64_t pause_logged_ms_ = -1;  // when a local pause was last logged
};

}  // namespace itsuka::server
