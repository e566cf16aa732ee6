#include "net/tcp.h"

#include <uv.h>

#include <cstring>

#include "common/log.h"
#include "net/loop_impl.h"

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

void CloseImpl(TcpConnection::Impl* impl) {
  if (impl->closing) return;
  impl->closing = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&impl->handle), [](uv_handle_t* h) {
    auto* impl = static_cast<TcpConnection::Impl*>(h->data);
    TcpConnection::ClosedFn cb = std::move(impl->on_closed);
    delete impl;
    if (cb) cb();  // may destroy the wrapper; it no longer refers to impl
  });
}

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
          if (impl->on_read) impl->on_read(std::string_view(buf->base, static_cast<size_t>(nread)));
        } else if (nread < 0) {
          if (nread != UV_EOF) LOG_DEBUG << "connection " << impl->peer << ": " << uv_strerror(nread);
          CloseImpl(impl);
        }
      });
}

void StopReading(TcpConnection::Impl* impl) {
  if (!impl->reading || impl->closing) return;
  impl->reading = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&impl->handle));
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
                                                      int port, ConnectedFn on_connected) {
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
  auto* creq = new ConnectReq{{}, impl};
  creq->req.data = creq;
  if (rc == 0) {
    rc = uv_tcp_connect(&creq->req, &impl->handle, reinterpret_cast<sockaddr*>(&addr),
                        [](uv_connect_t* r, int status) {
                          auto* creq = static_cast<ConnectReq*>(r->data);
                          Impl* impl = creq->conn;
                          delete creq;
                          impl->connecting = false;
                          ConnectedFn cb = std::move(impl->on_connected);
                          if (impl->closing) return;  // closed while connecting
                          if (status < 0) {
                            if (cb) cb(Status::IOError(std::string("connect: ") + uv_strerror(status)));
                            CloseImpl(impl);
                            return;
                          }
                          uv_tcp_nodelay(&impl->handle, 1);
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
  // libuv buffers carry 32-bit lengths: hand over larger data in pieces.
  constexpr size_t kMaxPiece = size_t{1} << 30;
  while (data.size() > kMaxPiece) {
    Write(data.substr(0, kMaxPiece));
    data.remove_prefix(kMaxPiece);
  }
  if (impl_ == nullptr || impl_->closing || data.empty()) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&impl_->handle);
  if (impl_->queued == 0) {
    uv_buf_t buf = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n == static_cast<int>(data.size())) return;
    if (n > 0) data.remove_prefix(static_cast<size_t>(n));
    else if (n != UV_EAGAIN) {
      LOG_DEBUG << "write to " << impl_->peer << ": " << uv_strerror(n);
      CloseImpl(impl_);
      return;
    }
  }
  auto* req = new WriteReq{{}, impl_, std::string(data)};
  req->req.data = req;
  uv_buf_t buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  impl_->queued += req->data.size();
  int rc = uv_write(&req->req, stream, &buf, 1, [](uv_write_t* r, int status) {
    auto* req = static_cast<WriteReq*>(r->data);
    Impl* impl = req->conn;
    impl->queued -= req->data.size();
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
    impl_->queued -= req->data.size();
    delete req;
    CloseImpl(impl_);
  }
}

size_t TcpConnection::queued_bytes() const { return impl_ ? impl_->queued : 0; }

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
};

Result<std::unique_ptr<TcpListener>> TcpListener::Listen(Loop& loop, const std::string& host,
                                                         int port, int backlog,
                                                         AcceptFn on_accept) {
  sockaddr_storage addr;
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    return Status::InvalidArgument("not an IP address: '" + host + "'");
  }
  auto* impl = new Impl;
  impl->loop = loop.impl();
  impl->on_accept = std::move(on_accept);
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
