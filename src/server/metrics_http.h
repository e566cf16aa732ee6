// The metrics.port listener: a minimal HTTP/1.1 responder on the node's own loop for
// Prometheus scrapes. GET /metrics (or HEAD) gets 200 with the exposition text
// (text/plain; version=0.0.4), any other path 404, anything that is not a well-formed
// GET/HEAD request line 400; every response closes the connection (Connection: close),
// so no keep-alive state is kept. A request is read up to kMaxRequestBytes (request
// line and headers; a body is never read); more closes the connection, and so does
// kRequestTimeoutMs after it opened, answered or not (a scraper that stops reading its
// answer does not keep a slot). At most kMaxConnections are open at once
// (further ones are closed at accept). Not meant as an attack surface: it binds
// server.bind like the client port and serves read-only figures.
//
// Thread-compatible: used from the loop's thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "itsuka/status.h"
#include "net/loop.h"
#include "net/tcp.h"

namespace itsuka::server {

class MetricsHttp {
 public:
  static constexpr size_t kMaxRequestBytes = 8192;
  static constexpr size_t kMaxConnections = 16;
  static constexpr int64_t kRequestTimeoutMs = 10000;

  using RenderFn = std::function<std::string()>;
  // Binds host:port and serves `render`'s text on GET /metrics.
  static Result<std::unique_ptr<MetricsHttp>> Listen(net::Loop& loop, const std::string& host,
                                                     int port, RenderFn render);
  ~MetricsHttp();
  int port() const { return listener_ ? listener_->port() : 0; }
  // Closes connections open for more than kRequestTimeoutMs, whether their request has
  // not arrived or their answer is not yet read (the node's once-a-second timer calls it).
  void Tick(int64_t now_ms);
  // Stops listening and closes every connection (shutdown).
  void Close();

  // What a request's head says (exposed for tests): kNeedMore until "\r\n\r\n".
  enum class Parse { kNeedMore, kMetrics, kHead, kNotFound, kBad };
  static Parse ParseRequest(std::string_view head);

 private:
  struct Conn {
    std::unique_ptr<net::TcpConnection> conn;
    std::string buf;
    int64_t opened_ms = 0;
    bool answered = false;
  };
  MetricsHttp(net::Loop& loop, RenderFn render) : loop_(loop), render_(std::move(render)) {}
  void OnAccept(std::unique_ptr<net::TcpConnection> conn);
  void OnRead(uint64_t id, std::string_view data);
  void Respond(Conn& c, int code, const char* reason, const std::string& body, bool head);

  net::Loop& loop_;
  RenderFn render_;
  std::unique_ptr<net::TcpListener> listener_;
  std::map<uint64_t, Conn> conns_;
  uint64_t next_id_ = 1;
};

}  // namespace itsuka::server
