// The peer transport: framed msgpack messages between nodes over TCP.
//
// Every node keeps one outgoing connection to each other member and accepts theirs.
// It sends on its outgoing connection and receives on the accepted ones. Frames are a
// 4-byte big-endian length and an encoded core::PeerMessage. Each connection starts
// with Hello both ways (cluster name, protocol version, node id); a peer with another
// cluster name or version, or one claiming this node's id, is refused and logged. Any
// other node id is accepted: members are learned by gossip (a joining node is unknown
// until its first gossip message), and AddPeer opens the outgoing connection to them. A peer is "up" while
// the outgoing connection to it has completed its handshake; when it drops, the
// transport reconnects with exponential backoff (100 ms doubling to 5 s). Messages for
// a peer that is down, or whose send queue is over its bound, are dropped (counted):
// the coordinator's timeout turns them into -TIMEOUT, never into unbounded memory.
// Heartbeats go to every peer each cluster.heartbeat_interval_ms; a phi-accrual
// detector per peer turns their arrival into suspicion. A peer is reported reachable
// while it is connected and not suspected.
//
// Until a connection has shaken hands it may send one frame of at most
// kMaxHandshakeFrame bytes, within kHandshakeTimeoutMs; at most
// cluster.max_peer_connections accepted connections exist at once. So a stranger on
// the peer port costs a bounded amount of memory and never a full-size frame buffer.
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
#include <random>
#include <functional>
#include <map>
#include <memory>
#include <string>

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
  uint64_t handshakes_timed_out = 0;   // no Hello within kHandshakeTimeoutMs
  uint64_t messages_refused = 0;       // decoded, values refused; connection kept
};

class PeerTransport {
 public:
  static constexpr size_t kMaxHandshakeFrame = 64 << 10;
  static constexpr uint64_t kHandshakeTimeoutMs = 5000;

  using MessageFn = std::function<void(const std::string& from, const core::PeerMessage&)>;
  using UpFn = std::function<void(const std::string& node, bool up)>;
  // A frame from a handshaken peer that decoded but whose values the decoder refused
  // (wire::DecodePeerMessage kInvalidArgument): the connection stays; the node answers.
  using RefusedFn = std::function<void(const std::string& from, const wire::PeerRefusal& refusal,
                                       const std::string& why)>;

  PeerTransport(net::Loop& loop, const Config& config, MessageFn on_message, UpFn on_up);
  ~PeerTransport();

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
  const PeerStats& stats() const { return stats_; }
  // One line per member but this node: "id=...,addr=...,state=up|suspect|down,phi=..."
  // plus ",offset_ms=...,offset_uncertainty_ms=..." once its clock offset is known.
  std::vector<std::string> Describe() const;

 private:
  struct FrameBuffer {
    std::string buf;
    // Appends bytes; calls on_frame for each complete frame. False on a bad frame.
    bool Feed(std::string_view data, size_t max_frame,
              const std::function<bool(std::string_view)>& on_frame);
  };
  struct Outgoing {
    SeedAddress addr;
    std::unique_ptr<net::TcpConnection> conn;
    std::unique_ptr<net::Timer> retry;
    FrameBuffer frames;
    bool up = false;         // connected and handshaked
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
    std::string peer_id;  // set by its Hello
    std::unique_ptr<net::Timer> handshake_deadline;
  };

  void Connect(Outgoing& out);
  void OnOutgoingClosed(Outgoing& out);
  void OnAccept(std::unique_ptr<net::TcpConnection> conn);
  bool OnIncomingFrame(uint64_t id, std::string_view frame);
  bool OnOutgoingFrame(Outgoing& out, std::string_view frame);
  // Checks a Hello; on refusal returns false with *why.
  bool AcceptHello(const core::Hello& hello, std::string* why) const;
  static void AppendFrame(std::string* out, std::string_view body);
  void WriteFrame(net::TcpConnection& conn, const core::PeerMessage& msg);
  size_t MaxFrame() const;
  // The frame limit for a connection: small until its handshake is done.
  size_t FrameLimit(bool handshaken) const { return handshaken ? MaxFrame() : kMaxHandshakeFrame; }
  bool Suspected(const Outgoing& out) const;
  // Tells on_up_ if the peer's reachability (connected and not suspected) changed.
  void Report(Outgoing& out);
  void OnHeartbeatTimer();
  void OnClockEcho(const std::string& from, const core::ClockEcho& echo);
  // Queues for the next Flush (Send without the test-only delay).
  void Enqueue(const std::string& to, const core::PeerMessage& msg);
  void ReleaseDelayed();

  net::Loop& loop_;
  const Config& config_;
  MessageFn on_message_;
  UpFn on_up_;
  RefusedFn on_refused_;
  std::function<int64_t()> wall_ms_;
  std::unique_ptr<net::TcpListener> listener_;
  std::map<std::string, Outgoing> outgoing_;
  std::map<uint64_t, Incoming> incoming_;
  uint64_t next_incoming_ = 1;
  PeerStats stats_;
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
};

}  // namespace itsuka::server
