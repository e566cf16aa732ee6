// itsuka-admin: the operator's tool. Talks RESP to one node (the cluster-wide commands
// status, transfers and snapshot to every member, and restore to none: tools/admin/ops.h).
//
//   itsuka-admin [--host H:P] [--password PW] [--json] info
//   itsuka-admin ... status | transfers [--wait] | snapshot [<id> | --list]
//   itsuka-admin restore --snapshot DIR --data-dir DIR --node-id ID [--secret-file F]
//   itsuka-admin [--host H:P] [--password PW] [--json] repair [--partition Q] [--node ID]
//                [--dry-run] [--no-wait] | repair --status | repair --stop
//   itsuka-admin ... hints | members | ring | decommission <node> | leave [<node>]
#include <netdb.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "cluster_view.h"
#include "ops.h"

namespace {

// A RESP2 reply, as far as the admin tool needs: strings, errors, integers, arrays.
struct Reply {
  char type = 0;  // '+', '-', ':', '$', '*'; '$' with null=true for nil
  bool null = false;
  std::string str;
  long long integer = 0;
  std::vector<Reply> elements;
};

class Connection {
 public:
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool Connect(const std::string& host, const std::string& port, std::string* err) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
      *err = "cannot resolve " + host + ": " + gai_strerror(rc);
      return false;
    }
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      fd_ = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd_ >= 0 && ::connect(fd_, a->ai_addr, a->ai_addrlen) == 0) break;
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) {
      *err = "cannot connect to " + host + ":" + port + ": " + std::strerror(errno);
      return false;
    }
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return true;
  }

  std::optional<Reply> Call(const std::vector<std::string>& args, std::string* err) {
    std::string req = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& a : args) req += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    for (size_t off = 0; off < req.size();) {
      ssize_t n = ::send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        *err = std::string("send: ") + std::strerror(errno);
        return std::nullopt;
      }
      off += static_cast<size_t>(n);
    }
    Reply r;
    if (!Read(&r, 0, err)) return std::nullopt;
    return r;
  }

 private:
  bool Fill(std::string* err) {
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) {
      *err = n == 0 ? "connection closed by the node" : std::string("recv: ") + std::strerror(errno);
      return false;
    }
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  bool Line(std::string* line, std::string* err) {
    size_t p;
    while ((p = buf_.find("\r\n")) == std::string::npos) {
      if (!Fill(err)) return false;
    }
    *line = buf_.substr(0, p);
    buf_.erase(0, p + 2);
    return true;
  }

  bool Read(Reply* r, int depth, std::string* err) {
    std::string line;
    if (depth > 8 || !Line(&line, err)) return false;
    if (line.empty()) {
      *err = "malformed reply";
      return false;
    }
    r->type = line[0];
    std::string rest = line.substr(1);
    switch (r->type) {
      case '+':
      case '-': r->str = rest; return true;
      case ':': r->integer = std::atoll(rest.c_str()); return true;
      case '$': {
        long long n = std::atoll(rest.c_str());
        if (n < 0) {
          r->null = true;
          return true;
        }
        while (buf_.size() < static_cast<size_t>(n) + 2) {
          if (!Fill(err)) return false;
        }
        r->str = buf_.substr(0, static_cast<size_t>(n));
        buf_.erase(0, static_cast<size_t>(n) + 2);
        return true;
      }
      case '*': {
        long long n = std::atoll(rest.c_str());
        for (long long i = 0; i < n; ++i) {
          r->elements.emplace_back();
          if (!Read(&r->elements.back(), depth + 1, err)) return false;
        }
        return true;
      }
      default: *err = "malformed reply"; return false;
    }
  }

  int fd_ = -1;
  std::string buf_;
};

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char tmp[8];
      std::snprintf(tmp, sizeof tmp, "\\u%04x", c);
      out += tmp;
    } else {
      out += c;
    }
  }
  return out;
}

// The value of field `key` as JSON: a decimal number (an integer, optionally negative,
// optionally with a fraction) as a number, anything else as a string -- except the
// fields that name a node, which stay strings even when a node id is all digits.
std::string JsonScalar(const std::string& key, const std::string& v) {
  static const std::regex kNumber("-?(0|[1-9][0-9]*)(\\.[0-9]+)?");
  const bool names_node = key == "id" || key == "node" || key == "node_id" || key == "self";
  return !names_node && std::regex_match(v, kNumber) ? v : "\"" + JsonEscape(v) + "\"";
}

int Usage() {
  std::fprintf(stderr,
               "usage: itsuka-admin [--host HOST:PORT] [--password PW] [--json] <command>\n"
               "commands:\n"
               "  status    the cluster, one line per member (from the --host node's view and\n"
               "            each member's INFO): state (up/down/joining/leaving/left), address,\n"
               "            data size, keys, ownership, hints held and held for it, last repair\n"
               "  info      one node's INFO, by section (what `status` printed before)\n"
               "  transfers [--wait]  partition transfers of a move, per destination and\n"
               "            source: keys and bytes copied, rate, progress and ETA (estimates);\n"
               "            --wait follows them until no partition moves (progress bar on a tty)\n"
               "  snapshot [<id>]  a RocksDB checkpoint on every member under one id (default\n"
               "            snap-<UTC time>), in <data_dir>.snapshots/<id> with a manifest.json;\n"
               "            exits 1 if a member did not take it.  snapshot --list: ids per node\n"
               "  restore --snapshot DIR --data-dir DIR --node-id ID [--secret-file F | --cluster-id HEX]\n"
               "            offline, on the node's host, node stopped: copies the snapshot into the\n"
               "            empty data directory after checking node and cluster id; then start\n"
               "            the node and run repair\n"
               "  hints     hints kept on this node for unreachable replicas, per target node,\n"
               "            and the handoff counters (written, replayed, dropped, refused)\n"
               "  repair [--partition Q] [--node ID] [--dry-run] [--no-wait]\n"
               "            anti-entropy: the node at --host compares the Merkle trees of every\n"
               "            partition's replicas (or only Q's, or only the pairs with node ID)\n"
               "            and moves the keys that differ; --dry-run only counts them.\n"
               "            Progress bar on a terminal, plain lines otherwise, then a report.\n"
               "  repair --status | --stop   show or cancel the node's repair\n"
               "  members   the gossiped member list: status, addresses, reachability\n"
               "  ring      ring version, members, partitions per member and moves in flight\n"
               "  decommission <node>   move a member's partitions away, then remove it\n"
               "  leave [<node>]        the same; without <node>, the node --host names\n"
               "  gate [open]  the membership gate of a node restarted from its saved view;\n"
               "            'open' overrides it (only when the members it waits for will\n"
               "            never return and none changed the membership: DESIGN 4.3.1)\n");
  return 2;
}

int Info(Connection& conn, bool json) {
  std::string err;
  std::optional<Reply> r = conn.Call({"INFO"}, &err);
  if (!r) {
    std::fprintf(stderr, "itsuka-admin: %s\n", err.c_str());
    return 1;
  }
  if (r->type == '-') {
    std::fprintf(stderr, "itsuka-admin: node replied: %s\n", r->str.c_str());
    return 1;
  }
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> sections;
  size_t start = 0;
  while (start < r->str.size()) {
    size_t end = r->str.find("\r\n", start);
    if (end == std::string::npos) end = r->str.size();
    std::string line = r->str.substr(start, end - start);
    start = end + 2;
    if (line.rfind("# ", 0) == 0) {
      sections.emplace_back(line.substr(2), std::map<std::string, std::string>{});
    } else if (size_t colon = line.find(':'); colon != std::string::npos && !sections.empty()) {
      sections.back().second[line.substr(0, colon)] = line.substr(colon + 1);
    }
  }
  if (json) {
    std::string out = "{";
    for (size_t i = 0; i < sections.size(); ++i) {
      out += (i ? "," : "") + std::string("\"") + JsonEscape(sections[i].first) + "\":{";
      bool first = true;
      for (const auto& [k, v] : sections[i].second) {
        out += (first ? "" : ",") + std::string("\"") + JsonEscape(k) + "\":" + JsonScalar(k, v);
        first = false;
      }
      out += "}";
    }
    std::printf("%s}\n", out.c_str());
    return 0;
  }
  for (const auto& [name, kv] : sections) {
    std::printf("%s\n", name.c_str());
    for (const auto& [k, v] : kv) std::printf("  %-28s %s\n", k.c_str(), v.c_str());
  }
  return 0;
}

// ITSUKA.HINTS answers "key:value" lines; targetN lines are "id=..,keys=..,bytes=..,state=..".
int Hints(Connection& conn, bool json) {
  std::string err;
  std::optional<Reply> r = conn.Call({"ITSUKA.HINTS"}, &err);
  if (!r) {
    std::fprintf(stderr, "itsuka-admin: %s\n", err.c_str());
    return 1;
  }
  if (r->type != '$' || r->null) {
    std::fprintf(stderr, "itsuka-admin: node replied: %s\n",
                 r->type == '-' ? r->str.c_str() : "an unexpected reply");
    return 1;
  }
  std::vector<std::pair<std::string, std::string>> counters;
  std::vector<std::map<std::string, std::string>> targets;
  size_t start = 0;
  while (start < r->str.size()) {
    size_t end = r->str.find("\r\n", start);
    if (end == std::string::npos) end = r->str.size();
    std::string line = r->str.substr(start, end - start);
    start = end + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon), v = line.substr(colon + 1);
    if (k.rfind("target", 0) != 0) {
      counters.emplace_back(k, v);
      continue;
    }
    std::map<std::string, std::string> t;
    size_t p = 0;
    while (p <= v.size()) {
      size_t comma = v.find(',', p);
      if (comma == std::string::npos) comma = v.size();
      std::string field = v.substr(p, comma - p);
      if (size_t eq = field.find('='); eq != std::string::npos) t[field.substr(0, eq)] = field.substr(eq + 1);
      p = comma + 1;
    }
    targets.push_back(std::move(t));
  }
  if (json) {
    std::string out = "{";
    for (const auto& [k, v] : counters) {
      out += "\"" + JsonEscape(k) + "\":" + JsonScalar(k, v) + ",";
    }
    out += "\"targets\":[";
    for (size_t i = 0; i < targets.size(); ++i) {
      const auto& t = targets[i];
      auto get = [&](const char* f) { auto it = t.find(f); return it == t.end() ? std::string() : it->second; };
      auto num = [&](const char* f) { std::string v = get(f); return v.empty() ? std::string("0") : v; };
      out += std::string(i ? "," : "") + "{\"id\":\"" + JsonEscape(get("id")) + "\",\"keys\":" +
             num("keys") + ",\"bytes\":" + num("bytes") + ",\"state\":\"" + JsonEscape(get("state")) + "\"}";
    }
    std::printf("%s]}\n", out.c_str());
    return 0;
  }
  if (targets.empty()) {
    std::printf("no hints stored\n");
  } else {
    std::printf("%-24s %12s %14s  %s\n", "TARGET", "KEYS", "BYTES", "STATE");
    for (auto& t : targets) {
      std::printf("%-24s %12s %14s  %s\n", t["id"].c_str(), t["keys"].c_str(), t["bytes"].c_str(),
                  t["state"].c_str());
    }
  }
  for (const auto& [k, v] : counters) std::printf("  %-22s %s\n", k.c_str(), v.c_str());
  return 0;
}

using itsuka::admin::Duration;
using itsuka::admin::SleepMs;

std::map<std::string, std::string> ParseLines(const std::string& text) {
  return itsuka::admin::ParseInfo(text);
}

long long Num(const std::map<std::string, std::string>& kv, const std::string& k) {
  return itsuka::admin::InfoNum(kv, k);
}

std::string Get(const std::map<std::string, std::string>& kv, const std::string& k) {
  auto it = kv.find(k);
  return it == kv.end() ? "" : it->second;
}

void PrintRepairReport(const std::map<std::string, std::string>& st, bool json) {
  if (json) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, v] : st) {
      out += (first ? "" : ",") + std::string("\"") + JsonEscape(k) + "\":" + JsonScalar(k, v);
      first = false;
    }
    std::printf("%s}\n", out.c_str());
    return;
  }
  std::printf("repair %s: %s%s in %.1f s\n", Get(st, "job").c_str(), Get(st, "state").c_str(),
              Get(st, "dry_run") == "1" ? " (dry run: nothing moved)" : "",
              static_cast<double>(Num(st, "elapsed_ms")) / 1000.0);
  std::printf("  partitions compared  %lld of %lld (synced %lld, failed %lld, skipped %lld)\n",
              Num(st, "partitions_finished"), Num(st, "partitions_total"),
              Num(st, "partitions_synced"), Num(st, "partitions_failed"),
              Num(st, "partitions_skipped"));
  std::printf("  leaves differing     %lld\n", Num(st, "leaves_differing"));
  std::printf("  keys differing       %lld\n", Num(st, "keys_differing"));
  std::printf("  keys moved           %lld\n", Num(st, "keys_moved"));
  std::printf("  bytes moved          %lld\n", Num(st, "bytes_moved"));
  std::printf("  tombstones purged    %lld\n", Num(st, "tombstones_purged"));
  if (Num(st, "replicas_skipped") > 0) {
    // Suspected by the failure detector when their turn came: synced without them.
    std::printf("  replicas skipped     %s (suspected; %lld partition(s) synced without them: "
                "run 'repair --node ID' once they are back)\n",
                Get(st, "skipped_replicas").c_str(), Num(st, "partitions_partial"));
  }
  if (Num(st, "partitions_failed") > 0) {
    std::printf("  failed partitions    %s\n", Get(st, "failed_partitions").c_str());
    std::printf("  last error           %s\n", Get(st, "last_error").c_str());
  }
}

// Runs `repair` against one node: starts it (or attaches to the one running), follows
// its progress until it ends, and reports. A node that restarts mid-run resumes the
// run itself; the tool reconnects (up to a minute) and keeps following.
int Repair(const std::function<bool(Connection&, std::string*)>& connect,
           const std::vector<std::string>& args, bool json) {
  std::vector<std::string> start = {"ITSUKA.REPAIR", "START"};
  bool wait = true, status_only = false, stop = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--partition" && i + 1 < args.size()) {
      start.push_back("PARTITION");
      start.push_back(args[++i]);
    } else if (args[i] == "--node" && i + 1 < args.size()) {
      start.push_back("NODE");
      start.push_back(args[++i]);
    } else if (args[i] == "--dry-run") {
      start.push_back("DRYRUN");
    } else if (args[i] == "--no-wait") {
      wait = false;
    } else if (args[i] == "--status") {
      status_only = true;
    } else if (args[i] == "--stop") {
      stop = true;
    } else {
      return Usage();
    }
  }
  auto conn = std::make_unique<Connection>();
  std::string err;
  if (!connect(*conn, &err)) {
    std::fprintf(stderr, "itsuka-admin: %s\n", err.c_str());
    return 1;
  }
  auto call = [&](const std::vector<std::string>& cmd) -> std::optional<Reply> {
    std::optional<Reply> r = conn->Call(cmd, &err);
    if (!r) std::fprintf(stderr, "itsuka-admin: %s\n", err.c_str());
    return r;
  };
  if (stop) {
    std::optional<Reply> r = call({"ITSUKA.REPAIR", "STOP"});
    if (!r) return 1;
    if (r->type == '-') {
      std::fprintf(stderr, "itsuka-admin: node replied: %s\n", r->str.c_str());
      return 1;
    }
    std::printf("repair stopped\n");
    return 0;
  }
  if (!status_only) {
    std::optional<Reply> r = call(start);
    if (!r) return 1;
    if (r->type == '-') {
      if (r->str.rfind("BUSY", 0) != 0) {
        std::fprintf(stderr, "itsuka-admin: node replied: %s\n", r->str.c_str());
        return 1;
      }
      std::fprintf(stderr, "itsuka-admin: %s; following it\n", r->str.c_str());
    }
  }
  if (!wait) {
    // Say which job runs and how to follow it (the node's STATUS names the job).
    std::optional<Reply> r = call({"ITSUKA.REPAIR", "STATUS"});
    if (!r) return 1;
    if (r->type == '-') {
      std::fprintf(stderr, "itsuka-admin: node replied: %s\n", r->str.c_str());
      return 1;
    }
    const std::map<std::string, std::string> st = ParseLines(r->str);
    if (json) {
      PrintRepairReport(st, true);
    } else {
      std::printf("repair %s started; follow it with: itsuka-admin repair --status\n",
                  Get(st, "job").c_str());
    }
    return 0;
  }
  const bool tty = ::isatty(STDOUT_FILENO) == 1 && !json;
  long long last_plain = -1;
  std::map<std::string, std::string> st;
  int reconnect_tries = 0;
  for (;;) {
    std::optional<Reply> r = conn->Call({"ITSUKA.REPAIR", "STATUS"}, &err);
    if (!r) {
      // The node went away (a crash or a restart): it resumes the run when it is
      // back, so reconnect and keep following.
      if (++reconnect_tries > 60) {
        std::fprintf(stderr, "itsuka-admin: lost the node: %s\n", err.c_str());
        return 1;
      }
      if (tty) std::printf("\n");
      std::fprintf(stderr, "itsuka-admin: %s; reconnecting\n", err.c_str());
      SleepMs(1000);
      conn = std::make_unique<Connection>();
      if (!connect(*conn, &err)) continue;
      continue;
    }
    reconnect_tries = 0;
    if (r->type == '-') {
      std::fprintf(stderr, "itsuka-admin: node replied: %s\n", r->str.c_str());
      return 1;
    }
    st = ParseLines(r->str);
    const std::string state = Get(st, "state");
    if (status_only || state != "running") break;
    const long long total = Num(st, "partitions_total"), done = Num(st, "partitions_finished");
    const double elapsed = static_cast<double>(Num(st, "elapsed_ms")) / 1000.0;
    const double rate = elapsed > 0 ? static_cast<double>(Num(st, "keys_moved")) / elapsed : 0;
    const std::string eta =
        done > 0 ? Duration(elapsed / static_cast<double>(done) * static_cast<double>(total - done)) : "?";
    if (tty) {
      const int width = 30;
      const int fill = total > 0 ? static_cast<int>(width * done / total) : 0;
      std::printf("\r[%s%s] %lld/%lld partitions  %lld differing  %lld moved  %.0f keys/s  ETA %s   ",
                  std::string(static_cast<size_t>(fill), '#').c_str(),
                  std::string(static_cast<size_t>(width - fill), '.').c_str(), done, total,
                  Num(st, "keys_differing"), Num(st, "keys_moved"), rate, eta.c_str());
      std::fflush(stdout);
    } else if (!json && static_cast<long long>(elapsed / 5) != last_plain) {
      last_plain = static_cast<long long>(elapsed / 5);
      std::printf("repair: %lld/%lld partitions, %lld keys differing, %lld moved, %.0f keys/s, "
                  "elapsed %s, eta %s\n",
                  done, total, Num(st, "keys_differing"), Num(st, "keys_moved"), rate,
                  Duration(elapsed).c_str(), eta.c_str());
      std::fflush(stdout);
    }
    SleepMs(200);
  }
  if (tty) std::printf("\n");
  PrintRepairReport(st, json);
  // A partition synced without a skipped replica is not fully repaired either.
  return Num(st, "partitions_failed") > 0 || Num(st, "replicas_skipped") > 0 ? 1 : 0;
}

// Calls a command; prints the error and returns nullopt if it failed.
std::optional<Reply> CallOrFail(Connection& conn, const std::vector<std::string>& args) {
  std::string err;
  std::optional<Reply> r = conn.Call(args, &err);
  if (!r) {
    std::fprintf(stderr, "itsuka-admin: %s\n", err.c_str());
    return std::nullopt;
  }
  if (r->type == '-') {
    std::fprintf(stderr, "itsuka-admin: node replied: %s\n", r->str.c_str());
    return std::nullopt;
  }
  return r;
}

// A flat [k, v, k, v...] array as ordered pairs.
std::vector<std::pair<std::string, std::string>> Pairs(const Reply& r) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i + 1 < r.elements.size(); i += 2) {
    out.emplace_back(r.elements[i].str, r.elements[i + 1].str);
  }
  return out;
}

std::string JsonObject(const std::vector<std::pair<std::string, std::string>>& kv) {
  std::string out = "{";
  for (size_t i = 0; i < kv.size(); ++i) {
    out += (i ? ",\"" : "\"") + JsonEscape(kv[i].first) + "\":" + JsonScalar(kv[i].first, kv[i].second);
  }
  return out + "}";
}

std::string Get(const std::vector<std::pair<std::string, std::string>>& kv, const std::string& k) {
  for (const auto& [key, v] : kv) {
    if (key == k) return v;
  }
  return "";
}

// The INFO cluster field `name` of an INFO text ("" if absent).
std::string InfoField(const std::string& info, const std::string& name) {
  const std::string tag = "\n" + name + ":";
  const size_t p = ("\n" + info).find(tag);
  if (p == std::string::npos) return "";
  const size_t from = p + tag.size() - 1;
  return info.substr(from, info.find("\r\n", from) - from);
}

// One line on what the node this tool talks to is copying for a move, if anything.
void PrintMoveProgress(Connection& conn) {
  std::string err;
  std::optional<Reply> info = conn.Call({"INFO", "cluster"}, &err);
  if (!info || info->type == '-') return;
  const std::string total = InfoField(info->str, "move_partitions_total");
  if (total.empty() || total == "0") return;
  std::printf("this node is copying a move's partitions: %s of %s partition(s) done, %s of %s source(s) "
              "done, %s key(s) copied, %s batch(es) retried\n",
              InfoField(info->str, "move_partitions_done").c_str(), total.c_str(),
              InfoField(info->str, "move_sources_done").c_str(),
              InfoField(info->str, "move_sources_total").c_str(),
              InfoField(info->str, "move_keys_copied").c_str(),
              InfoField(info->str, "move_batches_failed").c_str());
}

int Members(Connection& conn, bool json) {
  std::optional<Reply> r = CallOrFail(conn, {"ITSUKA.MEMBERS"});
  if (!r) return 1;
  if (r->type != '*') {
    std::fprintf(stderr, "itsuka-admin: unexpected reply to ITSUKA.MEMBERS\n");
    return 1;
  }
  if (json) {
    std::string out = "[";
    for (size_t i = 0; i < r->elements.size(); ++i) {
      out += (i ? "," : "") + JsonObject(Pairs(r->elements[i]));
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  std::printf("%-16s %-8s %-9s %-22s %-22s %-11s %s\n", "ID", "STATUS", "REACHABLE", "CLIENT", "PEER",
              "INCARNATION", "SYNCED");
  for (const Reply& m : r->elements) {
    auto kv = Pairs(m);
    std::printf("%-16s %-8s %-9s %-22s %-22s %-11s %s\n", Get(kv, "id").c_str(), Get(kv, "status").c_str(),
                Get(kv, "reachable").c_str(), Get(kv, "client_addr").c_str(), Get(kv, "peer_addr").c_str(),
                Get(kv, "incarnation").c_str(), Get(kv, "synced").c_str());
  }
  PrintMoveProgress(conn);
  return 0;
}

int RingCmd(Connection& conn, bool json) {
  std::optional<Reply> r = CallOrFail(conn, {"ITSUKA.RING"});
  if (!r) return 1;
  if (r->type != '*' || r->elements.size() != 2) {
    std::fprintf(stderr, "itsuka-admin: unexpected reply to ITSUKA.RING\n");
    return 1;
  }
  auto summary = Pairs(r->elements[0]);
  const std::vector<Reply>& parts = r->elements[1].elements;
  if (json) {
    std::string out = "{\"summary\":" + JsonObject(summary) + ",\"partitions\":[";
    for (size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].elements.size() != 3) continue;
      out += (i ? "," : "") + std::string("{\"partition\":") + parts[i].elements[0].str +
             ",\"replicas\":\"" + JsonEscape(parts[i].elements[1].str) + "\",\"target_replicas\":\"" +
             JsonEscape(parts[i].elements[2].str) + "\"}";
    }
    std::printf("%s]}\n", out.c_str());
    return 0;
  }
  for (const auto& [k, v] : summary) std::printf("%-16s %s\n", k.c_str(), v.c_str());
  // Partitions each member is the first replica (owner) of, and the moves in flight.
  std::map<std::string, int> owned;
  int moving = 0;
  for (const Reply& p : parts) {
    if (p.elements.size() != 3) continue;
    const std::string& reps = p.elements[1].str;
    owned[reps.substr(0, reps.find(','))]++;
    if (p.elements[1].str != p.elements[2].str) ++moving;
  }
  std::printf("owners:\n");
  for (const auto& [m, n] : owned) std::printf("  %-16s %d partition(s)\n", m.c_str(), n);
  std::printf("partitions moving: %d\n", moving);
  for (const Reply& p : parts) {
    if (p.elements.size() == 3 && p.elements[1].str != p.elements[2].str) {
      std::printf("  %-5s %s -> %s\n", p.elements[0].str.c_str(), p.elements[1].str.c_str(),
                  p.elements[2].str.c_str());
    }
  }
  return 0;
}

int Decommission(Connection& conn, std::string node) {
  if (node.empty()) {
    std::optional<Reply> info = CallOrFail(conn, {"INFO", "server"});
    if (!info) return 1;
    const size_t p = info->str.find("node_id:");
    if (p == std::string::npos) {
      std::fprintf(stderr, "itsuka-admin: the node does not report its node_id\n");
      return 1;
    }
    node = info->str.substr(p + 8, info->str.find("\r\n", p) - p - 8);
  }
  std::optional<Reply> r = CallOrFail(conn, {"ITSUKA.DECOMMISSION", node});
  if (!r) return 1;
  std::printf("%s is leaving: its partitions move to the other members, then it is marked left\n"
              "(watch with: itsuka-admin members)\n", node.c_str());
  return 0;
}

// `itsuka-admin gate [open]`: ITSUKA.GATE [OPEN].
int Gate(Connection& conn, const std::string& arg) {
  if (!arg.empty() && arg != "open") return Usage();
  std::vector<std::string> cmd = {"ITSUKA.GATE"};
  if (!arg.empty()) cmd.push_back("OPEN");
  std::optional<Reply> r = CallOrFail(conn, cmd);
  if (!r) return 1;
  if (arg.empty()) {
    std::printf("membership gate: %s\n", r->str.c_str());
  } else {
    std::printf("membership gate opened by the operator: the node serves on its saved view\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", port = "7001", password, command, arg;
  std::vector<std::string> sub_args;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--host" && i + 1 < argc) {
      std::string hp = argv[++i];
      size_t colon = hp.rfind(':');
      if (colon == std::string::npos) return Usage();
      host = hp.substr(0, colon);
      port = hp.substr(colon + 1);
    } else if (a == "--password" && i + 1 < argc) {
      password = argv[++i];
    } else if (a == "--json") {
      json = true;
    } else if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    } else if (command.empty() && a[0] != '-') {
      command = a;
    } else if (command == "repair" || command == "transfers" || command == "snapshot" ||
               command == "restore" || command == "status") {
      sub_args.push_back(a);
    } else if (!command.empty() && a[0] != '-' && arg.empty()) {
      arg = a;
    } else {
      return Usage();
    }
  }
  const bool takes_arg = command == "decommission" || command == "leave" || command == "gate";
  if (command == "status" || command == "transfers" || command == "snapshot" || command == "restore") {
    itsuka::admin::Options o{host, port, password, json, sub_args};
    const int rc = command == "status"      ? itsuka::admin::StatusCmd(o)
                   : command == "transfers" ? itsuka::admin::TransfersCmd(o)
                   : command == "snapshot"  ? itsuka::admin::SnapshotCmd(o)
                                            : itsuka::admin::RestoreCmd(o);
    return rc == 2 ? Usage() : rc;
  }
  if (command != "info" && command != "repair" && command != "hints" && command != "members" &&
      command != "ring" && !takes_arg) {
    return Usage();
  }
  if ((!takes_arg && !arg.empty()) || (command == "decommission" && arg.empty())) return Usage();
  auto connect = [&](Connection& c, std::string* e) {
    if (!c.Connect(host, port, e)) return false;
    if (!password.empty()) {
      std::optional<Reply> r = c.Call({"AUTH", password}, e);
      if (!r || r->type == '-') {
        *e = "AUTH failed: " + (r ? r->str : *e);
        return false;
      }
    }
    return true;
  };
  if (command == "repair") return Repair(connect, sub_args, json);
  Connection conn;
  std::string err;
  if (!connect(conn, &err)) {
    std::fprintf(stderr, "itsuka-admin: %s\n", err.c_str());
    return 1;
  }
  if (command == "hints") return Hints(conn, json);
  if (command == "members") return Members(conn, json);
  if (command == "ring") return RingCmd(conn, json);
  if (command == "gate") return Gate(conn, arg);
  if (takes_arg) return Decommission(conn, arg);
  return Info(conn, json);
}
