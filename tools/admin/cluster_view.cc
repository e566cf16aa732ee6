#include "cluster_view.h"

#include <cstdlib>

namespace itsuka::admin {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t p = 0;
  while (p <= s.size() && !s.empty()) {
    size_t q = s.find(sep, p);
    if (q == std::string::npos) q = s.size();
    if (q > p) out.push_back(s.substr(p, q - p));
    p = q + 1;
  }
  return out;
}

std::string Str(const redisReply* r) {
  if (r == nullptr) return "";
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) {
    return std::string(r->str, r->len);
  }
  if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
  return "";
}

}  // namespace

std::optional<Endpoint> ParseEndpoint(const std::string& hp) {
  const size_t colon = hp.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == hp.size()) return std::nullopt;
  char* end = nullptr;
  const long port = std::strtol(hp.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port <= 0 || port > 65535) return std::nullopt;
  std::string host = hp.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return Endpoint{host, static_cast<int>(port)};
}

std::unique_ptr<Conn> Conn::Open(const Endpoint& e, const std::string& password, int timeout_ms,
                                 std::string* err) {
  const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext* c = redisConnectWithTimeout(e.host.c_str(), e.port, tv);
  const std::string where = e.host + ":" + std::to_string(e.port);
  if (c == nullptr || c->err) {
    *err = "cannot connect to " + where + ": " + (c ? c->errstr : "out of memory");
    if (c) redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, tv);
  std::unique_ptr<Conn> conn(new Conn(c));
  if (!password.empty()) {
    ReplyPtr r = conn->Call({"AUTH", password}, err);
    if (!r || r->type == REDIS_REPLY_ERROR) {
      *err = where + ": AUTH failed: " + (r ? Str(r.get()) : *err);
      return nullptr;
    }
  }
  return conn;
}

Conn::~Conn() { redisFree(c_); }

ReplyPtr Conn::Call(const std::vector<std::string>& args, std::string* err) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c_, static_cast<int>(args.size()), argv.data(), lens.data()));
  if (r == nullptr) *err = c_->err ? c_->errstr : "no reply";
  return ReplyPtr(r);
}

ReplyPtr Conn::CallOk(const std::vector<std::string>& args, std::string* err) {
  ReplyPtr r = Call(args, err);
  if (r && r->type == REDIS_REPLY_ERROR) {
    *err = "node replied: " + Str(r.get());
    return nullptr;
  }
  return r;
}

std::vector<std::pair<std::string, std::string>> Pairs(const redisReply* r) {
  std::vector<std::pair<std::string, std::string>> out;
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY) return out;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    out.emplace_back(Str(r->element[i]), Str(r->element[i + 1]));
  }
  return out;
}

std::string Field(const std::vector<std::pair<std::string, std::string>>& kv, const std::string& k) {
  for (const auto& [key, v] : kv) {
    if (key == k) return v;
  }
  return "";
}

std::map<std::string, std::string> ParseInfo(const std::string& text) {
  std::map<std::string, std::string> kv;
  for (std::string line : Split(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    if (size_t colon = line.find(':'); colon != std::string::npos) {
      kv[line.substr(0, colon)] = line.substr(colon + 1);
    }
  }
  return kv;
}

long long InfoNum(const std::map<std::string, std::string>& info, const std::string& k) {
  auto it = info.find(k);
  return it == info.end() ? 0 : std::atoll(it->second.c_str());
}

std::optional<Endpoint> ClientEndpoint(const Member& m) {
  std::optional<Endpoint> e = ParseEndpoint(m.client_addr);
  if (e && (e->host == "0.0.0.0" || e->host == "::" || e->host.empty())) {
    std::optional<Endpoint> peer = ParseEndpoint(m.peer_addr);
    if (peer) e->host = peer->host;
  }
  return e;
}

bool LoadView(Conn& conn, ClusterView* view, std::string* err) {
  ReplyPtr members = conn.CallOk({"ITSUKA.MEMBERS"}, err);
  if (!members) return false;
  ReplyPtr ring = conn.CallOk({"ITSUKA.RING"}, err);
  if (!ring) return false;
  if (members->type != REDIS_REPLY_ARRAY || ring->type != REDIS_REPLY_ARRAY || ring->elements != 2 ||
      ring->element[1]->type != REDIS_REPLY_ARRAY) {
    *err = "unexpected reply to ITSUKA.MEMBERS or ITSUKA.RING";
    return false;
  }
  for (size_t i = 0; i < members->elements; ++i) {
    auto kv = Pairs(members->element[i]);
    Member m{Field(kv, "id"), Field(kv, "status"), Field(kv, "reachable"), Field(kv, "client_addr"),
             Field(kv, "peer_addr")};
    if (m.reachable == "self") view->view_from = m.id;
    view->members.push_back(std::move(m));
  }
  view->ring = Pairs(ring->element[0]);
  const redisReply* parts = ring->element[1];
  for (size_t i = 0; i < parts->elements; ++i) {
    const redisReply* p = parts->element[i];
    if (p->type != REDIS_REPLY_ARRAY || p->elements != 3) continue;
    view->replicas.push_back(Split(Str(p->element[1]), ','));
    view->target_replicas.push_back(Split(Str(p->element[2]), ','));
  }
  return true;
}

void LoadMemberInfo(ClusterView* view, const std::string& password, int timeout_ms,
                    const std::string& section) {
  for (Member& m : view->members) {
    if (m.status == "left") continue;  // out of the cluster: not contacted
    std::optional<Endpoint> e = ClientEndpoint(m);
    if (!e) {
      m.info_error = "no client address";
      continue;
    }
    std::string err;
    std::unique_ptr<Conn> c = Conn::Open(*e, password, timeout_ms, &err);
    ReplyPtr r;
    if (c) {
      std::vector<std::string> cmd = {"INFO"};
      if (!section.empty()) cmd.push_back(section);
      r = c->CallOk(cmd, &err);
    }
    if (!r || r->type != REDIS_REPLY_STRING) {
      m.info_error = r ? "unexpected reply to INFO" : err;
      continue;
    }
    m.info = ParseInfo(std::string(r->str, r->len));
    m.info_ok = true;
  }
}

}  // namespace itsuka::admin
