// The keyspace commands (README "Commands", docs/DESIGN.md 4.17): SCAN, KEYS, DBSIZE,
// TYPE, RANDOMKEY, and TOUCH / UNLINK (EXISTS's and DEL's handlers).
#include <cctype>
#include <charconv>
#include <random>

#include "core/keyspace.h"
#include "server/commands.h"
#include "wire/resp.h"

namespace itsuka::server {
namespace {

namespace resp = wire::resp;

// The longest MATCH pattern taken (a peer refuses longer ones in a ScanRequest).
constexpr size_t kMaxPatternBytes = 4096;

std::string LowerCopy(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ParseCount(const std::string& text, size_t* out) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v < 1) return false;
  *out = static_cast<size_t>(v);
  return true;
}

// The Redis type names: every itsuka key holds a string (a counter is reported as one).
bool KnownType(const std::string& t) {
  static const char* kTypes[] = {"string", "list", "set", "zset", "hash", "stream"};
  for (const char* k : kTypes) {
    if (t == k) return true;
  }
  return false;
}

}  // namespace

bool KeyspaceCommandDoc(const std::string& name, std::pair<std::string, std::string>* doc) {
  static const std::vector<std::pair<std::string, std::pair<std::string, std::string>>> docs = {
      {"scan", {"generic", "Iterates the cluster's keys: SCAN cursor [MATCH p] [COUNT n] [TYPE t]"}},
      {"keys", {"generic", "Every key matching a pattern (refused over cluster.keys_max keys)"}},
      {"dbsize", {"server", "The cluster's exact count of keys holding a value"}},
      {"type", {"generic", "The type of a key (string, or none)"}},
      {"randomkey", {"generic", "A random key held on this node (nil if none)"}},
      {"touch", {"generic", "Counts the keys that exist (no access times are kept)"}},
      {"unlink", {"generic", "Deletes keys (as DEL)"}},
  };
  for (const auto& [n, d] : docs) {
    if (n == name) {
      *doc = d;
      return true;
    }
  }
  return false;
}

std::vector<CommandExecutor::Command> CommandExecutor::KeyspaceCommands() {
  return {
      {"scan", -2, {"readonly"}, 0, 0, 0, true, &CommandExecutor::Scan},
      {"keys", 2, {"readonly"}, 0, 0, 0, true, &CommandExecutor::Keys},
      {"dbsize", 1, {"readonly", "fast"}, 0, 0, 0, true, &CommandExecutor::DbSize},
      {"type", 2, {"readonly", "fast"}, 1, 1, 1, true, &CommandExecutor::Type},
      {"randomkey", 1, {"readonly"}, 0, 0, 0, true, &CommandExecutor::RandomKey},
      {"touch", -2, {"readonly", "fast"}, 1, -1, 1, true, &CommandExecutor::Exists},
      {"unlink", -2, {"write", "fast"}, 1, -1, 1, true, &CommandExecutor::Del},
  };
}

void CommandExecutor::Scan(Session&, std::vector<std::string>& args, std::string* out) {
  const uint32_t leaves = store_.LeavesPerPartition();
  if (leaves == 0) return resp::AppendError(out, "ERR SCAN needs the anti-entropy index");
  Result<core::ScanCursor> cursor = core::DecodeScanCursor(args[1], store_.Partitions(), leaves);
  if (!cursor.ok()) return resp::AppendError(out, cursor.status().message());
  KeyspaceQuery q;
  q.cursor = *cursor;
  std::string type;
  for (size_t i = 2; i < args.size(); i += 2) {
    const std::string opt = LowerCopy(args[i]);
    if (i + 1 >= args.size()) return resp::AppendError(out, "ERR syntax error");
    if (opt == "match") {
      if (args[i + 1].size() > kMaxPatternBytes) {
        return resp::AppendError(out, "ERR MATCH pattern longer than 4096 bytes");
      }
      q.pattern = args[i + 1];
    } else if (opt == "count") {
      if (!ParseCount(args[i + 1], &q.count)) {
        return resp::AppendError(out, "ERR value is not an integer or out of range");
      }
    } else if (opt == "type") {
      type = LowerCopy(args[i + 1]);
    } else {
      return resp::AppendError(out, "ERR syntax error");
    }
  }
  if (q.pattern == "*") q.pattern.clear();
  // Every key is a string: another TYPE filters everything out (the cursor still moves).
  const bool none = !type.empty() && type != "string";
  if (!type.empty() && !KnownType(type)) {
    return resp::AppendError(out, "ERR unknown type name '" + type.substr(0, 64) + "'");
  }
  Await(1, [none](PendingReply& r) {
    const core::ClientResult& c = r.results[0];
    if (!c.status.ok()) return AppendStatusError(c.status, &r.data);
    resp::AppendArrayHeader(&r.data, 2);
    resp::AppendBulk(&r.data, std::to_string(c.cursor));
    resp::AppendArrayHeader(&r.data, none ? 0 : c.keys.size());
    if (!none) {
      for (const std::string& k : c.keys) resp::AppendBulk(&r.data, k);
    }
  });
  dispatch_->Keyspace(*reply_, 0, std::move(q));
}

void CommandExecutor::Keys(Session&, std::vector<std::string>& args, std::string* out) {
  if (store_.LeavesPerPartition() == 0) return resp::AppendError(out, "ERR KEYS needs the anti-entropy index");
  if (args[1].size() > kMaxPatternBytes) {
    return resp::AppendError(out, "ERR pattern longer than 4096 bytes");
  }
  KeyspaceQuery q;
  q.kind = KeyspaceQuery::Kind::kKeys;
  q.pattern = args[1] == "*" ? std::string() : args[1];
  q.keys_max = static_cast<uint64_t>(config_.keys_max);
  Await(1, [](PendingReply& r) {
    const core::ClientResult& c = r.results[0];
    if (!c.status.ok()) return AppendStatusError(c.status, &r.data);
    resp::AppendArrayHeader(&r.data, c.keys.size());
    for (const std::string& k : c.keys) resp::AppendBulk(&r.data, k);
  });
  dispatch_->Keyspace(*reply_, 0, std::move(q));
}

void CommandExecutor::DbSize(Session&, std::vector<std::string>&, std::string* out) {
  if (store_.LeavesPerPartition() == 0) {
    return resp::AppendInteger(out, static_cast<int64_t>(store_.value_keys()));
  }
  KeyspaceQuery q;
  q.kind = KeyspaceQuery::Kind::kDbSize;
  Await(1, [](PendingReply& r) {
    const core::ClientResult& c = r.results[0];
    if (!c.status.ok()) return AppendStatusError(c.status, &r.data);
    resp::AppendInteger(&r.data, static_cast<int64_t>(c.count));
  });
  dispatch_->Keyspace(*reply_, 0, std::move(q));
}

void CommandExecutor::Type(Session& session, std::vector<std::string>& args, std::string* out) {
  Quorums q;
  if (!SessionQuorums(session, &q, out)) return;
  Await(1, [this](PendingReply& r) {
    const core::ClientResult& c = r.results[0];
    if (!c.status.ok()) return AppendStatusError(c.status, &r.data);
    const bool live = !core::LiveSiblings(c.object, clock_.WallMs()).empty();
    resp::AppendSimple(&r.data, live ? "string" : "none");
  });
  StartGet(0, args[1], q);
}

void CommandExecutor::RandomKey(Session&, std::vector<std::string>&, std::string* out) {
  // A partition chosen with weight 1 among those holding keys here, then a random leaf
  // of it: the first live key at or after that leaf (wrapping to leaf 0).
  const std::vector<uint64_t>& counts = store_.value_counts();
  std::vector<uint32_t> held;
  for (uint32_t p = 0; p < counts.size(); ++p) {
    if (counts[p] > 0) held.push_back(p);
  }
  static std::mt19937_64 rng{std::random_device{}()};
  const uint32_t leaves = store_.LeavesPerPartition();
  for (int attempt = 0; attempt < 4 && !held.empty() && leaves > 0; ++attempt) {
    const uint32_t p = held[rng() % held.size()];
    const uint32_t leaf = static_cast<uint32_t>(rng() % leaves);
    for (const auto& [from, to] : {std::pair{leaf, leaves}, std::pair{0u, leaf}}) {
      if (from >= to) continue;
      core::ScanRequest req{0, p, from, to, 64, ""};
      core::ScanReply r = store_.ScanLeaves(req, clock_.WallMs());
      if (r.ok && !r.keys.empty()) {
        // The keys of the first leaf holding one: pick among them.
        size_t n = 0;
        while (n < r.keys.size() && r.key_leaves[n] == r.key_leaves[0]) ++n;
        return resp::AppendBulk(out, r.keys[rng() % n]);
      }
    }
  }
  resp::AppendNull(out);
}

}  // namespace itsuka::server
