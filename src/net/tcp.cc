#include "net/tcp.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <uv.h>

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "net/loop_impl.h"
#include "net/tls_impl.h"

namespace itsuka::net {

struct TcpConnection::Impl {
  uv_tcp_t handle;
  Loop::Impl* loop = nullptr;
  TcpConnection* owner = nullptr;  // null once the wrapper is gone
  ReadFn on_read;
  ClosedFn on_closed;
  size_t queued = 0;
  bool reading = false;
  bool closing = false;
  bool close_after_writes = false;
  bool connecting = false;  // Start() before the connection is up defers reading
  bool want_reading = false;
  std::string peer;
  TcpConnection::ConnectedFn on_connected;
  // TLS mode (ssl != null): ciphertext moves between the socket and OpenSSL through
  // two memory BIOs; the owner sees only plaintext.
  std::shared_ptr<TlsContext> tls;
  SSL* ssl = nullptr;        // owns both BIOs
  BIO* net_in = nullptr;     // socket -> OpenSSL
  BIO* net_out = nullptr;    // OpenSSL -> socket
  bool tls_ready = false;    // handshake finished
  bool tls_dialled = false;  // this side connected (report the handshake to on_connected)
  bool tls_started = false;  // bytes of a handshake arrived
  std::string plain_pending;  // written before the handshake finished
  // Protocol answers (key updates) OpenSSL produced while reading that are still
  // queued: bounded, so a peer that asks for them without reading cannot grow the queue.
  size_t control_queued = 0;
  uv_timer_t handshake_timer;
  bool timer_inited = false;
  int open_handles = 1;  // uv handles whose close callback has not run

  ~Impl() { SSL_free(ssl); }
};

namespace {

struct WriteReq {
  uv_write_t req;
  TcpConnection::Impl* conn;
  std::string data;
};

std::string PeerName(uv_tcp_t* handle) {
  sockaddr_storage addr;
  int len = sizeof addr;
  if (uv_tcp_getpeername(handle, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char ip[64] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
  }
  return std::string(ip) + ":" + std::to_string(port);
}

void OnHandleClosed(uv_handle_t* h) {
  auto* impl = static_cast<TcpConnection::Impl*>(h->data);
  if (--impl->open_handles > 0) return;
  TcpConnection::ClosedFn cb = std::move(impl->on_closed);
  delete impl;
  if (cb) cb();  // may destroy the wrapper; it no longer refers to impl
}

void CloseImpl(TcpConnection::Impl* impl) {
  if (impl->closing) return;
  impl->closing = true;
  if (impl->timer_inited) uv_close(reinterpret_cast<uv_handle_t*>(&impl->handshake_timer), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->handle), OnHandleClosed);
}

// Sends bytes as they are (ciphertext in TLS mode): a direct attempt, then a queue.
void RawWrite(TcpConnection::Impl* impl, std::string_view data);
// TLS mode: hands the socket what OpenSSL produced.
void FlushTls(TcpConnection::Impl* impl);
void OnTlsData(TcpConnection::Impl* impl, std::string_view data);
void TlsWrite(TcpConnection::Impl* impl, std::string_view data);

void StartReading(TcpConnection::Impl* impl) {
  if (impl->connecting) {
    impl->want_reading = true;
    return;
  }
  if (impl->reading || impl->closing) return;
  impl->reading = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&impl->handle),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* impl = static_cast<TcpConnection::Impl*>(h->data);
        buf->base = impl->loop->read_buffer;
        buf->len = sizeof impl->loop->read_buffer;
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* impl = static_cast<TcpConnection::Impl*>(s->data);
        if (nread > 0) {
          if (impl->ssl != nullptr) {
            OnTlsData(impl, std::string_view(buf->base, static_cast<size_t>(nread)));
          } else if (impl->on_read) {
            impl->on_read(std::string_view(buf->base, static_cast<size_t>(nread)));
          }
        } else if (nread < 0) {
          if (nread != UV_EOF) LOG_DEBUG << "connection " << impl->peer << ": " << uv_strerror(nread);
          if (impl->ssl != nullptr && !impl->tls_ready && !impl->closing &&
              (impl->tls_started || impl->tls_dialled)) {
            // A port scan that connects and leaves is not counted; a handshake cut off is.
            ++impl->tls->mutable_stats().handshake_failures;
            LOG_DEBUG << "tls: " << impl->peer << " closed the connection during the handshake";
            TcpConnection::ConnectedFn cb = std::move(impl->on_connected);
            impl->on_connected = nullptr;
            if (cb) cb(Status::IOError("tls: connection closed during the handshake"));
          }
          CloseImpl(impl);
        }
      });
}

void StopReading(TcpConnection::Impl* impl) {
  if (!impl->reading || impl->closing) return;
  impl->reading = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&impl->handle));
}

// ---- TLS over memory BIOs ---------------------------------------------------------

// Why the handshake or a record failed, in words an operator can act on.
std::string TlsFailure(TcpConnection::Impl* impl) {
  const long verify = SSL_get_verify_result(impl->ssl);
  std::string why = TlsErrorText("connection broken");
  if (verify != X509_V_OK) {
    why = std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
  }
  return why;
}

// Whether a TLS failure may be logged now (see TlsContext::Impl).
bool MayLog(TcpConnection::Impl* impl) {
  TlsContext::Impl* t = impl->tls->impl();
  const auto now = static_cast<int64_t>(uv_now(impl->handle.loop));
  if (now - t->log_window_ms >= 1000) {
    if (t->unlogged > 0) LOG_WARN << "tls: " << t->unlogged << " more failure(s) in the last second not logged";
    t->log_window_ms = now;
    t->logged = 0;
    t->unlogged = 0;
  }
  if (t->logged < TlsContext::Impl::kLogsPerSecond) {
    ++t->logged;
    return true;
  }
  ++t->unlogged;
  return false;
}

void HandshakeFailed(TcpConnection::Impl* impl, const std::string& why) {
  ++impl->tls->mutable_stats().handshake_failures;
  if (MayLog(impl)) LOG_WARN << "tls: handshake with " << impl->peer << " failed: " << why << "; closing";
  FlushTls(impl);  // the alert, if OpenSSL wrote one
  TcpConnection::ConnectedFn cb = std::move(impl->on_connected);
  impl->on_connected = nullptr;
  if (cb) cb(Status::IOError("tls handshake failed: " + why));
  CloseImpl(impl);
}

void TlsBroken(TcpConnection::Impl* impl, const std::string& why) {
  ++impl->tls->mutable_stats().errors;
  if (MayLog(impl)) LOG_WARN << "tls: connection " << impl->peer << ": " << why << "; closing";
  CloseImpl(impl);
}

void HandshakeDone(TcpConnection::Impl* impl) {
  impl->tls_ready = true;
  ++impl->tls->mutable_stats().handshakes;
  if (impl->timer_inited) uv_timer_stop(&impl->handshake_timer);
  LOG_DEBUG << "tls: " << impl->peer << " connected with " << SSL_get_version(impl->ssl) << " "
            << SSL_get_cipher_name(impl->ssl);
  if (!impl->plain_pending.empty()) {
    std::string pending;
    pending.swap(impl->plain_pending);
    TlsWrite(impl, pending);
  }
  TcpConnection::ConnectedFn cb = std::move(impl->on_connected);
  impl->on_connected = nullptr;
  if (cb) cb(impl->closing ? Status::IOError("tls: connection broken") : Status::Ok());
}

// Runs the handshake as far as the bytes received allow. False once it failed.
bool StepHandshake(TcpConnection::Impl* impl) {
  ERR_clear_error();
  const int rc = SSL_do_handshake(impl->ssl);
  if (rc == 1) {
    FlushTls(impl);
    HandshakeDone(impl);
    return !impl->closing;
  }
  const int err = SSL_get_error(impl->ssl, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    FlushTls(impl);
    return true;
  }
  HandshakeFailed(impl, TlsFailure(impl));
  return false;
}

void EnableTls(TcpConnection::Impl* impl, std::shared_ptr<TlsContext> tls, bool dial) {
  impl->tls = std::move(tls);
  impl->tls_dialled = dial;
  impl->ssl = SSL_new(impl->tls->impl()->ctx);
  impl->net_in = BIO_new(BIO_s_mem());
  impl->net_out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(impl->net_in, -1);  // empty means "wait for more", not EOF
  BIO_set_mem_eof_return(impl->net_out, -1);
  SSL_set_bio(impl->ssl, impl->net_in, impl->net_out);
  if (dial) {
    // The server's certificate must chain to the CA, whatever the context asks of clients.
    SSL_set_verify(impl->ssl, SSL_VERIFY_PEER, nullptr);
    SSL_set_connect_state(impl->ssl);
  } else {
    SSL_set_accept_state(impl->ssl);
  }
  uv_timer_init(impl->handle.loop, &impl->handshake_timer);
  impl->handshake_timer.data = impl;
  impl->timer_inited = true;
  ++impl->open_handles;
  uv_timer_start(&impl->handshake_timer, [](uv_timer_t* t) {
    auto* impl = static_cast<TcpConnection::Impl*>(t->data);
    if (impl->closing || impl->tls_ready) return;
    HandshakeFailed(impl, "no handshake within " +
                              std::to_string(impl->tls->options().handshake_timeout_ms) + " ms");
  }, impl->tls->options().handshake_timeout_ms, 0);
}

void FlushTls(TcpConnection::Impl* impl) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(impl->net_out, &data);
  if (n <= 0) return;
  // RawWrite copies what the socket does not take at once, so the BIO can be emptied.
  if (!impl->closing) RawWrite(impl, std::string_view(data, static_cast<size_t>(n)));
  (void)BIO_reset(impl->net_out);
}

void TlsWrite(TcpConnection::Impl* impl, std::string_view data) {
  if (!impl->tls_ready) {
    impl->plain_pending.append(data);  // counted by queued_bytes(), so bounded by the owner
    return;
  }
  // In pieces, each encrypted and handed to the socket before the next: the ciphertext
  // held in the BIO never exceeds one piece.
  constexpr size_t kPiece = 64 << 10;
  while (!data.empty() && !impl->closing) {
    const int len = static_cast<int>(std::min(data.size(), kPiece));
    ERR_clear_error();
    const int n = SSL_write(impl->ssl, data.data(), len);
    if (n <= 0) {
      TlsBroken(impl, "write: " + TlsFailure(impl));
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
    FlushTls(impl);
  }
}

constexpr size_t kMaxControlQueued = 64 << 10;

void OnTlsData(TcpConnection::Impl* impl, std::string_view data) {
  if (impl->closing) return;
  impl->tls_started = true;
  // At most one socket read (64 KiB) sits in the BIO: it is drained below before the
  // next read, so a peer cannot make this layer hold more than that plus one partial
  // record.
  if (BIO_write(impl->net_in, data.data(), static_cast<int>(data.size())) != static_cast<int>(data.size())) {
    TlsBroken(impl, "cannot buffer received bytes");
    return;
  }
  if (!impl->tls_ready && !StepHandshake(impl)) return;
  if (!impl->tls_ready) return;
  char* plain = impl->loop->tls_plain;
  constexpr size_t kPlainCap = sizeof impl->loop->tls_plain;
  size_t have = 0;
  bool eof = false;
  for (;;) {
    if (have == kPlainCap) {
      // Cannot happen for reads of at most 64 KiB; if it did, hand over what is here
      // rather than hold more.
      if (impl->on_read) impl->on_read(std::string_view(plain, have));
      if (impl->closing) return;
      have = 0;
    }
    ERR_clear_error();
    const int n = SSL_read(impl->ssl, plain + have, static_cast<int>(kPlainCap - have));
    if (n > 0) {
      have += static_cast<size_t>(n);
      continue;
    }
    const int err = SSL_get_error(impl->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    if (err == SSL_ERROR_ZERO_RETURN) {  // close_notify: the other side is done
      eof = true;
      break;
    }
    FlushTls(impl);
    TlsBroken(impl, TlsFailure(impl));
    return;
  }
  // Anything SSL_read answered (key updates, alerts): output the owner never wrote.
  const size_t queued_before = impl->queued;
  FlushTls(impl);
  if (impl->queued > queued_before) impl->control_queued += impl->queued - queued_before;
  if (impl->control_queued > kMaxControlQueued) {
    TlsBroken(impl, "asks for TLS protocol answers (key updates) without reading them");
    return;
  }
  if (have > 0 && impl->on_read && !impl->closing) impl->on_read(std::string_view(plain, have));
  if (eof) CloseImpl(impl);
}

}  // namespace

TcpConnection::TcpConnection(Impl* impl) : impl_(impl) { impl_->owner = this; }

namespace {
struct ConnectReq {
  uv_connect_t req;
  TcpConnection::Impl* conn;
};
}  // namespace

std::unique_ptr<TcpConnection> TcpConnection::Connect(Loop& loop, const std::string& host,
                                                      int port, ConnectedFn on_connected,
                                                      std::shared_ptr<TlsContext> tls) {
  auto* impl = new Impl;
  impl->loop = loop.impl();
  impl->connecting = true;
  impl->on_connected = std::move(on_connected);
  impl->peer = host + ":" + std::to_string(port);
  uv_tcp_init(&impl->loop->loop, &impl->handle);
  impl->handle.data = impl;
  auto conn = std::make_unique<TcpConnection>(impl);
  sockaddr_storage addr;
  int rc = uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) rc = uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr));
  if (tls) EnableTls(impl, std::move(tls), /*dial=*/true);
  auto* creq = new ConnectReq{{}, impl};
  creq->req.data = creq;
  if (rc == 0) {
    rc = uv_tcp_connect(&creq->req, &impl->handle, reinterpret_cast<sockaddr*>(&addr),
                        [](uv_connect_t* r, int status) {
                          auto* creq = static_cast<ConnectReq*>(r->data);
                          Impl* impl = creq->conn;
                          delete creq;
                          impl->connecting = false;
                          if (impl->closing) return;  // closed while connecting
                          if (status < 0) {
                            ConnectedFn cb = std::move(impl->on_connected);
                            if (cb) cb(Status::IOError(std::string("connect: ") + uv_strerror(status)));
                            CloseImpl(impl);
                            return;
                          }
                          uv_tcp_nodelay(&impl->handle, 1);
                          if (impl->ssl != nullptr) {
                            // Connected once the handshake is done: it needs reading,
                            // and HandshakeDone reports to on_connected.
                            StartReading(impl);
                            StepHandshake(impl);
                            return;
                          }
                          ConnectedFn cb = std::move(impl->on_connected);
                          if (impl->want_reading) StartReading(impl);
                          if (cb) cb(Status::Ok());
                        });
  }
  if (rc != 0) {
    delete creq;
    impl->connecting = false;
    // Report from the loop, not from inside Connect, like every other outcome.
    impl->on_connected = nullptr;
    CloseImpl(impl);
  }
  return conn;
}

TcpConnection::~TcpConnection() {
  // The impl may already be gone if the close callback ran (it clears owner first).
  if (impl_ != nullptr && impl_->owner == this) {
    impl_->owner = nullptr;
    impl_->on_read = nullptr;
    impl_->on_closed = nullptr;
    CloseImpl(impl_);
  }
}

void TcpConnection::Start(ReadFn on_read, ClosedFn on_closed) {
  impl_->on_read = std::move(on_read);
  // Forget the impl before the owner's callback runs: it is being freed.
  impl_->on_closed = [this, cb = std::move(on_closed)] {
    impl_ = nullptr;
    cb();
  };
  StartReading(impl_);
}

void TcpConnection::Write(std::string_view data) {
  if (impl_ == nullptr || impl_->closing || data.empty()) return;
  if (impl_->ssl != nullptr) {
    TlsWrite(impl_, data);
  } else {
    RawWrite(impl_, data);
  }
}

namespace {

void RawWrite(TcpConnection::Impl* impl, std::string_view data) {
  using Impl = TcpConnection::Impl;
  // libuv buffers carry 32-bit lengths: hand over larger data in pieces.
  constexpr size_t kMaxPiece = size_t{1} << 30;
  while (data.size() > kMaxPiece) {
    RawWrite(impl, data.substr(0, kMaxPiece));
    data.remove_prefix(kMaxPiece);
  }
  if (impl->closing || data.empty()) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&impl->handle);
  if (impl->queued == 0) {
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n == static_cast<int>(data.size())) return;
    if (n > 0) data.remove_prefix(static_cast<size_t>(n));
    else if (n != UV_EAGAIN) {
      LOG_DEBUG << "write to " << impl->peer << ": " << uv_strerror(n);
      CloseImpl(impl);
      return;
    }
  }
  auto* req = new WriteReq{{}, impl, std::string(data)};
  req->req.data = req;
  uv_buf_t buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  impl->queued += req->data.size();
  int rc = uv_write(&req->req, stream, &buf, 1, [](uv_write_t* r, int status) {
    auto* req = static_cast<WriteReq*>(r->data);
    Impl* impl = req->conn;
    impl->queued -= req->data.size();
    if (impl->queued == 0) impl->control_queued = 0;
    delete req;
    if (impl->closing) return;
    if (status < 0) {
      LOG_DEBUG << "write to " << impl->peer << ": " << uv_strerror(status);
      CloseImpl(impl);
    } else if (impl->close_after_writes && impl->queued == 0) {
      CloseImpl(impl);
    }
  });
  if (rc != 0) {
    impl->queued -= req->data.size();
    delete req;
    CloseImpl(impl);
  }
}

}  // namespace

size_t TcpConnection::queued_bytes() const {
  return impl_ ? impl_->queued + impl_->plain_pending.size() : 0;
}

bool TcpConnection::tls() const { return impl_ != nullptr && impl_->ssl != nullptr; }

void TcpConnection::PauseReading() {
  if (impl_) StopReading(impl_);
}

void TcpConnection::ResumeReading() {
  if (impl_) StartReading(impl_);
}

void TcpConnection::Close() {
  if (impl_) CloseImpl(impl_);
}

void TcpConnection::CloseAfterWrites() {
  if (impl_ == nullptr || impl_->closing) return;
  StopReading(impl_);
  if (impl_->ssl != nullptr) {
    if (!impl_->tls_ready) {  // nothing was sent yet, and nothing can be
      CloseImpl(impl_);
      return;
    }
    ERR_clear_error();
    SSL_shutdown(impl_->ssl);  // queues close_notify
    FlushTls(impl_);
    if (impl_->closing) return;
  }
  impl_->close_after_writes = true;
  if (impl_->queued == 0) CloseImpl(impl_);
}

bool TcpConnection::closing() const { return impl_ == nullptr || impl_->closing; }

const std::string& TcpConnection::peer() const {
  static const std::string kClosed = "(closed)";
  return impl_ ? impl_->peer : kClosed;
}

// ---- TcpListener ------------------------------------------------------------------

struct TcpListener::Impl {
  uv_tcp_t handle;
  Loop::Impl* loop = nullptr;
  AcceptFn on_accept;
  std::shared_ptr<TlsContext> tls;
};

Result<std::unique_ptr<TcpListener>> TcpListener::Listen(Loop& loop, const std::string& host,
                                                         int port, int backlog,
                                                         AcceptFn on_accept,
                                                         std::shared_ptr<TlsContext> tls) {
  sockaddr_storage addr;
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return Status::InvalidArgument("not an IP address: '" + host + "'");
  }
  auto* impl = new Impl;
  impl->loop = loop.impl();
  impl->on_accept = std::move(on_accept);
  impl->tls = std::move(tls);
  uv_tcp_init(&impl->loop->loop, &impl->handle);
  impl->handle.data = impl;
  auto listener = std::make_unique<TcpListener>(impl);
  int rc = uv_tcp_bind(&impl->handle, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&impl->handle), backlog,
                   [](uv_stream_t* server, int status) {
                     auto* impl = static_cast<Impl*>(server->data);
                     if (status < 0) {
                       LOG_WARN << "accept: " << uv_strerror(status);
                       return;
                     }
                     auto* conn = new TcpConnection::Impl;
                     conn->loop = impl->loop;
                     uv_tcp_init(&impl->loop->loop, &conn->handle);
                     conn->handle.data = conn;
                     if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&conn->handle)) != 0) {
                       CloseImpl(conn);
                       return;
                     }
                     uv_tcp_nodelay(&conn->handle, 1);
                     conn->peer = PeerName(&conn->handle);
                     if (impl->tls) EnableTls(conn, impl->tls, /*dial=*/false);
                     impl->on_accept(std::make_unique<TcpConnection>(conn));
                   });
  }
  if (rc != 0) {
    return Status::IOError("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                           uv_strerror(rc));
  }
  return listener;
}

TcpListener::~TcpListener() { Close(); }

void TcpListener::Close() {
  if (impl_ == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->handle),
           [](uv_handle_t* h) { delete static_cast<Impl*>(h->data); });
  impl_ = nullptr;
}

int TcpListener::port() const {
  if (impl_ == nullptr) return 0;
  sockaddr_storage addr;
  int len = sizeof addr;
  if (uv_tcp_getsockname(&impl_->handle, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
}

}  // namespace itsuka::net
