// TCP listener and connection wrappers over libuv.
//
// A TcpConnection reports received bytes and its closing through callbacks given to
// Start(). Writes are queued without copying more than once: Write() first tries to
// send directly (uv_try_write) and queues only the remainder. queued_bytes() lets the
// owner enforce an output-buffer limit. After Close() (or a peer EOF/error) the
// on_closed callback runs exactly once, from the loop; the owner may destroy the
// connection inside it. All methods belong to the loop's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "itsuka/status.h"
#include "net/loop.h"

namespace itsuka::net {

class TcpConnection {
 public:
  struct Impl;
  explicit TcpConnection(Impl* impl);
  ~TcpConnection();
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  using ReadFn = std::function<void(std::string_view data)>;
  using ClosedFn = std::function<void()>;
  using ConnectedFn = std::function<void(Status)>;

  // Connects to host:port (an IP literal). on_connected runs once from the loop; on
  // failure the connection is closed and on_closed runs after it. Call Start() from
  // on_connected (or at once: reads begin when the connection is established).
  static std::unique_ptr<TcpConnection> Connect(Loop& loop, const std::string& host, int port,
                                                ConnectedFn on_connected);

  void Start(ReadFn on_read, ClosedFn on_closed);

  // Queues bytes for sending. Ignored once closing.
  void Write(std::string_view data);
  size_t queued_bytes() const;

  void PauseReading();
  void ResumeReading();

  // Closes now, discarding queued output.
  void Close();
  // Stops reading, sends what is queued, then closes.
  void CloseAfterWrites();
  bool closing() const;

  const std::string& peer() const;  // "ip:port"

 private:
  Impl* impl_;  // freed by the uv close callback, not by this object
};

class TcpListener {
 public:
  using AcceptFn = std::function<void(std::unique_ptr<TcpConnection>)>;
  // Binds host:port (IPv4 or IPv6 literal) and starts listening.
  static Result<std::unique_ptr<TcpListener>> Listen(Loop& loop, const std::string& host,
                                                     int port, int backlog, AcceptFn on_accept);
  ~TcpListener();
  void Close();
  int port() const;  // the bound port (useful when asked for port 0)

  struct Impl;
  explicit TcpListener(Impl* impl) : impl_(impl) {}

 private:
  Impl* impl_;
};

}  // namespace itsuka::net
