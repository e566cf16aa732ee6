// TCP listener and connection wrappers over libuv.
//
// A TcpConnection reports received bytes and its closing through callbacks given to
// Start(). Writes are queued without copying more than once: Write() first tries to
// send directly (uv_try_write) and queues only the remainder. queued_bytes() lets the
// owner enforce an output-buffer limit. After Close() (or a peer EOF/error) the
// on_closed callback runs exactly once, from the loop; the owner may destroy the
// connection inside it. All methods belong to the loop's thread.
//
// TLS: a listener or a dialled connection given a TlsContext speaks TLS (see
// net/tls.h) and its owner sees only plaintext: on_read gets decrypted bytes, once per
// socket read (so the layer never holds more than one read and a partial record, and
// nothing more is decrypted while reading is paused), Write encrypts, queued_bytes()
// counts what waits to be sent (ciphertext, and plaintext written before the
// handshake finished), PauseReading and
// CloseAfterWrites (which sends close_notify) behave as without TLS. A dialled TLS
// connection reports to on_connected once its handshake finished (or failed); an
// accepted one handshakes before on_read sees anything. A failed handshake closes
// the connection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "itsuka/status.h"
#include "net/loop.h"
#include "net/tls.h"

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
  // With `tls`, the connection is made with TLS and verifies the server's certificate;
  // reading starts at once (the handshake needs it), so call Start() before returning
  // to the loop.
  static std::unique_ptr<TcpConnection> Connect(Loop& loop, const std::string& host, int port,
                                                ConnectedFn on_connected,
                                                std::shared_ptr<TlsContext> tls = nullptr);

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
  bool tls() const;

 private:
  Impl* impl_;  // freed by the uv close callback, not by this object
};

class TcpListener {
 public:
  using AcceptFn = std::function<void(std::unique_ptr<TcpConnection>)>;
  // Binds host:port (IPv4 or IPv6 literal) and starts listening. With `tls`, every
  // accepted connection speaks TLS.
  static Result<std::unique_ptr<TcpListener>> Listen(Loop& loop, const std::string& host,
                                                     int port, int backlog, AcceptFn on_accept,
                                                     std::shared_ptr<TlsContext> tls = nullptr);
  ~TcpListener();
  void Close();
  int port() const;  // the bound port (useful when asked for port 0)

  struct Impl;
  explicit TcpListener(Impl* impl) : impl_(impl) {}

 private:
  Impl* impl_;
};

}  // namespace itsuka::net
