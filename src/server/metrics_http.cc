#include "server/metrics_http.h"

#include <algorithm>

namespace itsuka::server {

Result<std::unique_ptr<MetricsHttp>> MetricsHttp::Listen(net::Loop& loop, const std::string& host,
                                                         int port, RenderFn render) {
  std::unique_ptr<MetricsHttp> m(new MetricsHttp(loop, std::move(render)));
  MetricsHttp* self = m.get();
  Result<std::unique_ptr<net::TcpListener>> l = net::TcpListener::Listen(
      loop, host, port, 64,
      [self](std::unique_ptr<net::TcpConnection> conn) { self->OnAccept(std::move(conn)); });
  if (!l.ok()) return l.status();
  m->listener_ = std::move(l).value();
  return m;
}

MetricsHttp::~MetricsHttp() { Close(); }

void MetricsHttp::Close() {
  // Destroying a connection closes it without running its callbacks.
  listener_.reset();
  conns_.clear();
}

void MetricsHttp::OnAccept(std::unique_ptr<net::TcpConnection> conn) {
  if (conns_.size() >= kMaxConnections) return;  // conn's destructor closes it
  const uint64_t id = next_id_++;
  Conn& c = conns_[id];
  c.conn = std::move(conn);
  c.opened_ms = loop_.NowMs();
  c.conn->Start([this, id](std::string_view data) { OnRead(id, data); },
                [this, id] { conns_.erase(id); });
}

MetricsHttp::Parse MetricsHttp::ParseRequest(std::string_view head) {
  const size_t end = head.find("\r\n\r\n");
  const size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos || end == std::string_view::npos) {
    // A request line must be plain text; a bare LF or a control byte is not HTTP.
    for (char c : head.substr(0, eol == std::string_view::npos ? head.size() : eol)) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return Parse::kBad;
    }
    return Parse::kNeedMore;
  }
  std::string_view line = head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return Parse::kBad;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return Parse::kBad;
  if (method != "GET" && method != "HEAD") return Parse::kBad;
  if (target.empty() || target[0] != '/') return Parse::kBad;
  std::string_view path = target.substr(0, target.find('?'));
  if (path != "/metrics") return Parse::kNotFound;
  return method == "HEAD" ? Parse::kHead : Parse::kMetrics;
}

void MetricsHttp::OnRead(uint64_t id, std::string_view data) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.answered) return;
  Conn& c = it->second;
  c.buf.append(data.substr(0, kMaxRequestBytes + 1 - std::min(c.buf.size(), kMaxRequestBytes + 1)));
  Parse p = ParseRequest(c.buf);
  if (p == Parse::kNeedMore && c.buf.size() > kMaxRequestBytes) p = Parse::kBad;
  switch (p) {
    case Parse::kNeedMore: return;
    case Parse::kMetrics: return Respond(c, 200, "OK", render_(), false);
    case Parse::kHead: return Respond(c, 200, "OK", render_(), true);
    case Parse::kNotFound: return Respond(c, 404, "Not Found", "not found; try /metrics\n", false);
    case Parse::kBad: return Respond(c, 400, "Bad Request", "bad request\n", false);
  }
}

void MetricsHttp::Respond(Conn& c, int code, const char* reason, const std::string& body,
                          bool head) {
  c.answered = true;
  c.buf.clear();
  std::string out = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n";
  out += code == 200 ? "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                     : "Content-Type: text/plain; charset=utf-8\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head) out += body;
  c.conn->Write(out);
  c.conn->CloseAfterWrites();
}

void MetricsHttp::Tick(int64_t now_ms) {
  for (auto& [id, c] : conns_) {
    if (now_ms - c.opened_ms > kRequestTimeoutMs && !c.conn->closing()) {
      c.answered = true;
      c.conn->Close();
    }
  }
}

}  // namespace itsuka::server
