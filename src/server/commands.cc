#include "server/commands.h"

#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cstdio>

#include "common/log.h"
#include "wire/object_codec.h"
#include "wire/resp.h"

#if defined(__SANITIZE_ADDRESS__)
#define ITSUKA_ASAN_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ITSUKA_ASAN_ALLOCATOR 1
#endif
#endif
#ifndef ITSUKA_ASAN_ALLOCATOR
#define ITSUKA_ASAN_ALLOCATOR 0
#endif
#if ITSUKA_ASAN_ALLOCATOR
// Exported by the sanitizer runtime (its allocator interface; gcc 12 ships no header).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

namespace itsuka::server {
namespace {

namespace resp = wire::resp;

constexpr const char* kVersion = "0.1.0";
// Reported as redis_version for client libraries that branch on it.
constexpr const char* kRedisCompatVersion = "7.0.0";

std::string Lower(std::string_view s) { return AsciiLower(s); }

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && Lower(a) == Lower(b);
}

bool ParseInt(std::string_view s, int64_t* out) { return ParseInt64(s, out); }

// CONFIG GET's patterns: at most this many, each at most this long to match anything.
constexpr size_t kMaxConfigPatterns = 128;
constexpr size_t kMaxConfigPatternBytes = 128;

// Glob matching for CONFIG GET / COMMAND patterns: '*', '?', no classes.
bool GlobMatch(std::string_view pat, std::string_view s) {
  // Iterative, backtracking only to the last '*': O(|pat| x |s|) steps. (A recursive
  // matcher takes exponential time on patterns like "*?*?*?*?*?*?*?*?*?*?Z": 79 s for
  // that one against the setting names, with the node unresponsive.)
  auto same = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  };
  size_t p = 0, i = 0, star = std::string_view::npos, resume = 0;
  while (i < s.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star = p++;
      resume = i;
    } else if (p < pat.size() && (pat[p] == '?' || same(pat[p], s[i]))) {
      ++p;
      ++i;
    } else if (star != std::string_view::npos) {
      p = star + 1;  // let the last '*' take one more character
      i = ++resume;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

void ErrWrongArgs(const std::string& name, std::string* out) {
  resp::AppendError(out, "ERR wrong number of arguments for '" + Lower(name) + "' command");
}

// Heap bytes the allocator has handed out and not got back, which is what Redis calls
// used_memory; RocksDB's memtables and block cache are in it. With jemalloc (itsukad's
// allocator, found at run time so that binaries without it still link) its
// "stats.allocated"; otherwise glibc's small blocks plus mmapped ones.
int64_t AllocatedBytes() {
  using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
  static const Mallctl mallctl = reinterpret_cast<Mallctl>(::dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl != nullptr) {
    uint64_t epoch = 1;
    size_t allocated = 0, len = sizeof(epoch);
    mallctl("epoch", &epoch, &len, &epoch, sizeof(epoch));  // refreshes the statistics
    len = sizeof(allocated);
    if (mallctl("stats.allocated", &allocated, &len, nullptr, 0) == 0) {
      return static_cast<int64_t>(allocated);
    }
  }
#if ITSUKA_ASAN_ALLOCATOR
  // The sanitizer's allocator replaces glibc's, whose mallinfo2 then reports nothing.
  return static_cast<int64_t>(__sanitizer_get_current_allocated_bytes());
#else
  const struct mallinfo2 mi = ::mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
#endif
}

// Resident set size from /proc/self/statm (0 where that is not available).
int64_t ProcessRssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  long pages_total = 0, pages_resident = 0;
  int n = std::fscanf(f, "%ld %ld", &pages_total, &pages_resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<int64_t>(pages_resident) * ::sysconf(_SC_PAGESIZE);
}

// One "key:value" line of INFO text.
void Line(std::string* s, const std::string& k, const std::string& v) {
  *s += k + ":" + v + "\r\n";
}

// INFO cpu: the process's CPU seconds (getrusage), as Redis names them.
void AppendCpuInfo(std::string* s) {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  char buf[32];
  auto secs = [&](const struct timeval& tv) {
    std::snprintf(buf, sizeof buf, "%ld.%06ld", static_cast<long>(tv.tv_sec),
                  static_cast<long>(tv.tv_usec));
    return std::string(buf);
  };
  Line(s, "used_cpu_sys", secs(ru.ru_stime));
  Line(s, "used_cpu_user", secs(ru.ru_utime));
}

void ErrSyntax(std::string* out) { resp::AppendError(out, "ERR syntax error"); }

void ErrNotInteger(std::string* out) {
  resp::AppendError(out, "ERR value is not an integer or out of range");
}

// COMMAND DOCS: (group, summary) of a command of the table.
std::pair<std::string, std::string> CommandDoc(const std::string& name) {
  static const auto* docs = new std::unordered_map<std::string, std::pair<std::string, std::string>>{
      {"ping", {"connection", "Returns PONG, or the argument"}},
      {"echo", {"connection", "Returns the argument"}},
      {"quit", {"connection", "Closes the connection after the reply"}},
      {"select", {"connection", "Selects database 0 (the only one)"}},
      {"hello", {"connection", "Handshake: RESP2, optional AUTH and SETNAME"}},
      {"auth", {"connection", "Authenticates the connection"}},
      {"client", {"connection", "SETNAME GETNAME ID SETINFO INFO LIST KILL NO-EVICT"}},
      {"command", {"server", "Describes the commands: COUNT LIST INFO DOCS"}},
      {"info", {"server", "Server information and statistics by section"}},
      {"config", {"server", "CONFIG GET pattern; CONFIG SET of the settings safe to change live"}},
      {"get", {"string", "Value of a key (siblings as an array) [R n] [PR n] [CONSISTENT]"}},
      {"vget", {"string", "Context token and every sibling of a key"}},
      {"set", {"string", "Sets a key [EX|PX|EXAT|PXAT|KEEPTTL] [NX|XX] [GET] [CTX t] [W n] [PW n] [CONSISTENT]"}},
      {"setnx", {"string", "Sets a key only if it does not exist"}},
      {"setex", {"string", "Sets a key with an expiry in seconds"}},
      {"psetex", {"string", "Sets a key with an expiry in milliseconds"}},
      {"getset", {"string", "Sets a key, returns the old value (CONSISTENT read-modify-write)"}},
      {"getdel", {"string", "Returns and deletes a key (CONSISTENT read-modify-write)"}},
      {"getex", {"string", "Returns a key, optionally changing its expiry"}},
      {"append", {"string", "Appends to a key's value (CONSISTENT read-modify-write)"}},
      {"strlen", {"string", "Length of a key's value"}},
      {"getrange", {"string", "Substring of a key's value"}},
      {"setrange", {"string", "Overwrites part of a key's value (CONSISTENT read-modify-write)"}},
      {"incr", {"string", "Adds 1 to a convergent counter [W n] [PW n] [CONSISTENT]"}},
      {"incrby", {"string", "Adds an integer to a convergent counter [W n] [PW n] [CONSISTENT]"}},
      {"decr", {"string", "Subtracts 1 from a convergent counter [W n] [PW n] [CONSISTENT]"}},
      {"decrby", {"string", "Subtracts an integer from a convergent counter [W n] [PW n] [CONSISTENT]"}},
      {"incrbyfloat", {"string", "Adds a float to a key's value (CONSISTENT read-modify-write)"}},
      {"mget", {"string", "Values of several keys"}},
      {"mset", {"string", "Sets several keys (atomic per key only)"}},
      {"msetnx", {"string", "Sets a key if it does not exist (one key only)"}},
      {"del", {"generic", "Deletes keys"}},
      {"exists", {"generic", "Counts the keys that exist"}},
      {"ttl", {"generic", "Time to live in seconds"}},
      {"pttl", {"generic", "Time to live in milliseconds"}},
      {"expiretime", {"generic", "Expiry as a Unix time in seconds"}},
      {"pexpiretime", {"generic", "Expiry as a Unix time in milliseconds"}},
      {"expire", {"generic", "Sets an expiry in seconds [NX|XX|GT|LT]"}},
      {"pexpire", {"generic", "Sets an expiry in milliseconds [NX|XX|GT|LT]"}},
      {"expireat", {"generic", "Sets an expiry as a Unix time in seconds [NX|XX|GT|LT]"}},
      {"pexpireat", {"generic", "Sets an expiry as a Unix time in milliseconds [NX|XX|GT|LT]"}},
      {"persist", {"generic", "Removes a key's expiry"}},
      {"multi", {"transactions", "Starts a transaction (one key)"}},
      {"exec", {"transactions", "Runs the queued commands atomically on one key"}},
      {"discard", {"transactions", "Drops the queued commands"}},
      {"watch", {"transactions", "EXEC answers nil if the key changes meanwhile"}},
      {"unwatch", {"transactions", "Forgets the WATCHed keys"}},
      {"cluster", {"cluster", "SLOTS SHARDS NODES INFO KEYSLOT MYID: hash slots mapped onto partitions"}},
      {"readonly", {"cluster", "Allows reads from replicas (every node serves every key)"}},
      {"readwrite", {"cluster", "Ends READONLY (a no-op here)"}},
      {"itsuka.transfers", {"itsuka", "Partition transfers this node runs for a move, per source"}},
      {"itsuka.snapshot", {"itsuka", "CREATE <id>: a RocksDB checkpoint with a manifest (off the loop); STATUS <id>; LIST"}},
  };
  auto it = docs->find(name);
  if (it != docs->end()) return it->second;
  std::pair<std::string, std::string> doc;
  if (KeyspaceCommandDoc(name, &doc)) return doc;
  return {"itsuka", "itsuka command (README)"};
}

}  // namespace

CommandExecutor::CommandExecutor(const Config& config, Store& store, Stats& stats,
                                 const Clock& clock, const core::NodeCore& core)
    : config_(config),
      store_(store),
      stats_(stats),
      clock_(clock),
      core_(core),
      auth_limiter_(AuthLimits{config.auth_max_failures, config.auth_failure_window_s * 1000,
                               config.auth_failure_delay_ms, 5000, 10000}) {
  const std::vector<Command> table = {
      {"ping", -1, {"fast"}, 0, 0, 0, true, &CommandExecutor::Ping},
      {"echo", 2, {"fast"}, 0, 0, 0, true, &CommandExecutor::Echo},
      {"quit", -1, {"fast", "no-auth"}, 0, 0, 0, false, &CommandExecutor::Quit},
      {"select", 2, {"loading", "fast"}, 0, 0, 0, true, &CommandExecutor::Select},
      {"hello", -1, {"fast", "no-auth"}, 0, 0, 0, false, &CommandExecutor::Hello},
      {"auth", -2, {"fast", "no-auth"}, 0, 0, 0, false, &CommandExecutor::Auth},
      {"command", -1, {"loading"}, 0, 0, 0, true, &CommandExecutor::CommandCmd},
      {"info", -1, {"loading"}, 0, 0, 0, true, &CommandExecutor::InfoCmd},
      {"config", -2, {"admin"}, 0, 0, 0, true, &CommandExecutor::ConfigCmd},
      {"client", -2, {"fast"}, 0, 0, 0, true, &CommandExecutor::ClientCmd},
      {"get", -2, {"readonly", "fast"}, 1, 1, 1, true, &CommandExecutor::Get},
      {"vget", -2, {"readonly", "fast"}, 1, 1, 1, true, &CommandExecutor::VGet},
      {"set", -3, {"write", "denyoom"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"del", -2, {"write"}, 1, -1, 1, true, &CommandExecutor::Del},
      {"incr", -2, {"write", "denyoom", "fast"}, 1, 1, 1, true, &CommandExecutor::Incr},
      {"incrby", -3, {"write", "denyoom", "fast"}, 1, 1, 1, true, &CommandExecutor::Incr},
      {"decr", -2, {"write", "denyoom", "fast"}, 1, 1, 1, true, &CommandExecutor::Incr},
      {"decrby", -3, {"write", "denyoom", "fast"}, 1, 1, 1, true, &CommandExecutor::Incr},
      {"exists", -2, {"readonly", "fast"}, 1, -1, 1, true, &CommandExecutor::Exists},
      {"mget", -2, {"readonly", "fast"}, 1, -1, 1, true, &CommandExecutor::MGet},
      {"mset", -3, {"write", "denyoom"}, 1, -1, 2, true, &CommandExecutor::MSet},
      {"ttl", 2, {"readonly", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"pttl", 2, {"readonly", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"expiretime", 2, {"readonly", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"pexpiretime", 2, {"readonly", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"strlen", -2, {"readonly", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"getrange", -4, {"readonly"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"getex", -2, {"write", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"setnx", -3, {"write", "denyoom", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"setex", -4, {"write", "denyoom"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"psetex", -4, {"write", "denyoom"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"msetnx", -3, {"write", "denyoom"}, 1, -1, 2, true, &CommandExecutor::StringCmd},
      {"getset", 3, {"write", "denyoom", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"getdel", 2, {"write", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"append", 3, {"write", "denyoom", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"incrbyfloat", 3, {"write", "denyoom", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"setrange", 4, {"write", "denyoom"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"expire", -3, {"write", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"pexpire", -3, {"write", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"expireat", -3, {"write", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"pexpireat", -3, {"write", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"persist", 2, {"write", "fast"}, 1, 1, 1, true, &CommandExecutor::StringCmd},
      {"multi", 1, {"fast", "loading"}, 0, 0, 0, true, &CommandExecutor::Multi},
      {"exec", 1, {"loading", "skip_slowlog"}, 0, 0, 0, true, &CommandExecutor::Exec},
      {"discard", 1, {"fast", "loading"}, 0, 0, 0, true, &CommandExecutor::Discard},
      {"watch", -2, {"fast", "loading"}, 1, -1, 1, true, &CommandExecutor::WatchCmd},
      {"unwatch", 1, {"fast", "loading"}, 0, 0, 0, true, &CommandExecutor::Unwatch},
      {"cluster", -2, {"loading", "stale"}, 0, 0, 0, true, &CommandExecutor::ClusterCmd},
      {"readonly", 1, {"fast", "loading", "stale"}, 0, 0, 0, true, &CommandExecutor::ReadOnlyCmd},
      {"readwrite", 1, {"fast", "loading", "stale"}, 0, 0, 0, true, &CommandExecutor::ReadOnlyCmd},
      {"itsuka.defaults", -1, {"fast"}, 0, 0, 0, true, &CommandExecutor::Defaults},
      {"itsuka.hints", 1, {"admin"}, 0, 0, 0, true, &CommandExecutor::Hints},
      {"itsuka.repair", -2, {"admin"}, 0, 0, 0, true, &CommandExecutor::Repair},
      {"itsuka.members", 1, {"admin"}, 0, 0, 0, true, &CommandExecutor::Members},
      {"itsuka.ring", 1, {"admin"}, 0, 0, 0, true, &CommandExecutor::RingCmd},
      {"itsuka.decommission", 2, {"admin"}, 0, 0, 0, true, &CommandExecutor::Decommission},
      {"itsuka.gate", -1, {"admin"}, 0, 0, 0, true, &CommandExecutor::Gate},
      {"itsuka.transfers", 1, {"admin"}, 0, 0, 0, true, &CommandExecutor::Transfers},
      {"itsuka.snapshot", -2, {"admin"}, 0, 0, 0, true, &CommandExecutor::Snapshot},
  };
  for (const Command& c : table) commands_.emplace(c.name, c);
  for (const Command& c : KeyspaceCommands()) commands_.emplace(c.name, c);
}

void CommandExecutor::Execute(Session& session, std::vector<std::string>& args,
                              PendingReply& reply, Dispatcher& dispatch) {
  reply_ = &reply;
  dispatch_ = &dispatch;
  std::string* out = &reply.data;
  ++stats_.commands_processed;
  const size_t before = out->size();
  std::string name = Lower(args[0]);
  auto it = commands_.find(name);
  if (it != commands_.end()) session.last_command = it->first;  // CLIENT LIST's cmd=
  if (it == commands_.end()) {
    std::string msg = "ERR unknown command '" + args[0].substr(0, 128) +
                      "', with args beginning with: ";
    for (size_t i = 1; i < args.size() && i < 4; ++i) msg += "'" + args[i].substr(0, 128) + "' ";
    resp::AppendError(out, msg);
  } else {
    const Command& cmd = it->second;
    const int argc = static_cast<int>(args.size());
    if ((cmd.arity > 0 && argc != cmd.arity) || (cmd.arity < 0 && argc < -cmd.arity)) {
      ErrWrongArgs(cmd.name, out);
    } else if (cmd.needs_auth && !session.authenticated) {
      resp::AppendError(out, "NOAUTH Authentication required.");
    } else if (cmd.first_key > 0 && OverMemoryLimit()) {
      // Commands on keys are the work that takes memory; connection, introspection and
      // admin commands still answer so an operator can see what is going on.
      ++stats_.oom_refusals;
      resp::AppendError(out, "OOM command not allowed when used memory > 'server.max_memory_bytes'.");
    } else if (QueuesInMulti(session, name)) {
      QueueInMulti(session, args, out);
    } else {
      (this->*cmd.handler)(session, args, out);
    }
    reply.command = &cmd.name;  // the latency histogram's label (server/metrics.h)
  }
  if (out->size() > before && (*out)[before] == '-') {
    ++stats_.error_replies;
    // A command refused while queueing (unknown, wrong arguments, not allowed inside):
    // EXEC will answer -EXECABORT, as Redis does.
    if (QueuesInMulti(session, name)) session.multi_failed = true;
  }
  reply_ = nullptr;
  dispatch_ = nullptr;
}

// ---- Connection commands ----------------------------------------------------------

void CommandExecutor::Ping(Session&, std::vector<std::string>& args, std::string* out) {
  if (args.size() > 2) return ErrWrongArgs("ping", out);
  if (args.size() == 2) return resp::AppendBulk(out, args[1]);
  resp::AppendSimple(out, "PONG");
}

void CommandExecutor::Echo(Session&, std::vector<std::string>& args, std::string* out) {
  resp::AppendBulk(out, args[1]);
}

void CommandExecutor::Quit(Session& session, std::vector<std::string>&, std::string* out) {
  session.close_after_reply = true;
  resp::AppendSimple(out, "OK");
}

void CommandExecutor::Select(Session&, std::vector<std::string>& args, std::string* out) {
  int64_t db = 0;
  if (!ParseInt(args[1], &db)) return ErrNotInteger(out);
  if (db != 0) return resp::AppendError(out, "ERR DB index is out of range");
  resp::AppendSimple(out, "OK");
}

void CommandExecutor::Auth(Session& session, std::vector<std::string>& args, std::string* out) {
  if (args.size() > 3) return ErrSyntax(out);
  if (config_.requirepass.empty()) {
    return resp::AppendError(out,
                             "ERR AUTH <password> called without any password configured for "
                             "the default user. Are you sure your configuration is correct?");
  }
  const std::string& user = args.size() == 3 ? args[1] : std::string("default");
  const std::string& pass = args.back();
  if (!CheckPassword(session, user, pass, out)) return;
  session.authenticated = true;
  resp::AppendSimple(out, "OK");
}

bool CommandExecutor::OverMemoryLimit() const {
  return config_.max_memory_bytes > 0 && stats_.client_memory_bytes > config_.max_memory_bytes;
}

bool CommandExecutor::CheckPassword(Session& session, const std::string& user,
                                    const std::string& pass, std::string* out) {
  const int64_t now = clock_.MonotonicMs();
  const std::string address = AddressOf(session.peer);
  if (!auth_limiter_.Allowed(address, now)) {
    ++stats_.auth_rate_limited;
    session.reply_delay_ms = auth_limiter_.delay_for(++session.auth_failures);
    resp::AppendError(out, "ERR too many failed AUTH attempts from this address; try again later");
    return false;
  }
  if (!config_.requirepass.empty() && user == "default" && pass == config_.requirepass) {
    session.auth_failures = 0;
    return true;
  }
  ++stats_.auth_failures;
  session.reply_delay_ms = auth_limiter_.OnFailure(address, ++session.auth_failures, now);
  resp::AppendError(out, "WRONGPASS invalid username-password pair or user is disabled.");
  return false;
}

void CommandExecutor::Hello(Session& session, std::vector<std::string>& args, std::string* out) {
  size_t i = 1;
  if (args.size() > 1) {
    int64_t ver = 0;
    if (!ParseInt(args[1], &ver)) {
      return resp::AppendError(out, "ERR Protocol version is not an integer or out of range");
    }
    if (ver != 2) {
      return resp::AppendError(out, "NOPROTO unsupported protocol version (itsuka speaks RESP2)");
    }
    i = 2;
  }
  bool authenticated = session.authenticated;
  const std::string* name = nullptr;
  for (; i < args.size(); ++i) {
    if (IEquals(args[i], "AUTH") && i + 2 < args.size()) {
      if (config_.requirepass.empty()) {
        return resp::AppendError(out,
                                 "WRONGPASS invalid username-password pair or user is disabled.");
      }
      if (!CheckPassword(session, args[i + 1], args[i + 2], out)) return;
      authenticated = true;
      i += 2;
    } else if (IEquals(args[i], "SETNAME") && i + 1 < args.size()) {
      // Checked as CLIENT SETNAME checks it; set only once authenticated (below).
      if (std::string err = ClientNameError(args[++i]); !err.empty()) {
        return resp::AppendError(out, err);
      }
      name = &args[i];
    } else {
      return resp::AppendError(out, "ERR Syntax error in HELLO option '" + args[i].substr(0, 128) +
                                        "'");
    }
  }
  if (!authenticated) {
    return resp::AppendError(out, "NOAUTH HELLO must be called with the client already "
                                  "authenticated, otherwise the HELLO AUTH <user> <pass> option "
                                  "can be used to authenticate the client and select the RESP "
                                  "protocol version at the same time");
  }
  session.authenticated = true;
  if (name != nullptr) session.name = *name;
  resp::AppendArrayHeader(out, 14);
  resp::AppendBulk(out, "server");
  resp::AppendBulk(out, "itsuka");
  resp::AppendBulk(out, "version");
  resp::AppendBulk(out, kVersion);
  resp::AppendBulk(out, "proto");
  resp::AppendInteger(out, 2);
  resp::AppendBulk(out, "id");
  resp::AppendInteger(out, static_cast<int64_t>(session.id));
  resp::AppendBulk(out, "mode");
  resp::AppendBulk(out, "standalone");
  resp::AppendBulk(out, "role");
  resp::AppendBulk(out, "master");
  resp::AppendBulk(out, "modules");
  resp::AppendArrayHeader(out, 0);
}

// ---- Introspection -----------------------------------------------------------------

void CommandExecutor::AppendCommandInfo(const Command& cmd, std::string* out) const {
  resp::AppendArrayHeader(out, 10);
  resp::AppendBulk(out, cmd.name);
  resp::AppendInteger(out, cmd.arity);
  resp::AppendArrayHeader(out, cmd.flags.size());
  for (const std::string& f : cmd.flags) resp::AppendSimple(out, f);
  resp::AppendInteger(out, cmd.first_key);
  resp::AppendInteger(out, cmd.last_key);
  resp::AppendInteger(out, cmd.step);
  for (int i = 0; i < 4; ++i) resp::AppendArrayHeader(out, 0);  // acl, tips, key specs, subcmds
}

void CommandExecutor::CommandCmd(Session&, std::vector<std::string>& args, std::string* out) {
  std::vector<const Command*> all;
  for (const auto& [name, cmd] : commands_) all.push_back(&cmd);
  std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->name < b->name; });
  if (args.size() == 1) {
    resp::AppendArrayHeader(out, all.size());
    for (const Command* c : all) AppendCommandInfo(*c, out);
    return;
  }
  std::string sub = Lower(args[1]);
  if (sub == "count" && args.size() == 2) {
    return resp::AppendInteger(out, static_cast<int64_t>(all.size()));
  }
  if (sub == "list" && args.size() == 2) {
    resp::AppendArrayHeader(out, all.size());
    for (const Command* c : all) resp::AppendBulk(out, c->name);
    return;
  }
  if (sub == "info" && args.size() == 2) {  // every command, as Redis 7
    resp::AppendArrayHeader(out, all.size());
    for (const Command* c : all) AppendCommandInfo(*c, out);
    return;
  }
  if (sub == "info") {
    resp::AppendArrayHeader(out, args.size() - 2);
    for (size_t i = 2; i < args.size(); ++i) {
      auto it = commands_.find(Lower(args[i]));
      if (it == commands_.end()) {
        out->append("*-1\r\n");
      } else {
        AppendCommandInfo(it->second, out);
      }
    }
    return;
  }
  if (sub == "docs") {
    // A map of name -> {summary, since, group} for the named commands (all without names).
    std::vector<const Command*> want;
    for (size_t i = 2; i < args.size(); ++i) {
      auto it = commands_.find(Lower(args[i]));
      if (it != commands_.end()) want.push_back(&it->second);
    }
    if (args.size() == 2) want = all;
    resp::AppendArrayHeader(out, want.size() * 2);
    for (const Command* c : want) {
      const auto [group, summary] = CommandDoc(c->name);
      resp::AppendBulk(out, c->name);
      resp::AppendArrayHeader(out, 6);
      resp::AppendBulk(out, "summary");
      resp::AppendBulk(out, summary);
      resp::AppendBulk(out, "since");
      resp::AppendBulk(out, kVersion);
      resp::AppendBulk(out, "group");
      resp::AppendBulk(out, group);
    }
    return;
  }
  resp::AppendError(out, "ERR unknown subcommand '" + args[1].substr(0, 128) +
                             "'. Try COMMAND COUNT, LIST, INFO, DOCS.");
}

void CommandExecutor::ConfigCmd(Session&, std::vector<std::string>& args, std::string* out) {
  if (IEquals(args[1], "SET")) return ConfigSet(args, out);
  if (IEquals(args[1], "GET") && args.size() > 2 + kMaxConfigPatterns) {
    return resp::AppendError(out, "ERR CONFIG GET takes at most " +
                                      std::to_string(kMaxConfigPatterns) + " patterns");
  }
  if (!IEquals(args[1], "GET") || args.size() < 3) {
    return resp::AppendError(out, "ERR CONFIG supports GET <pattern> [pattern ...] and SET "
                                  "<setting> <value> [...] of the settings safe to change live "
                                  "(README); others are changed in the config file");
  }
  // Redis names that tools such as redis-benchmark ask for: itsuka takes no RDB
  // snapshots and keeps no AOF (its durability is RocksDB's write-ahead log).
  std::vector<std::pair<std::string, std::string>> settings = {{"save", ""},
                                                               {"appendonly", "no"}};
  for (auto& kv : ListSettings(config_)) settings.push_back(std::move(kv));
  std::vector<const std::pair<std::string, std::string>*> hits;
  for (const auto& kv : settings) {
    for (size_t i = 2; i < args.size(); ++i) {
      // A pattern over kMaxConfigPatternBytes matches nothing (the names are far
      // shorter), which bounds the matching work whatever a client sends.
      if (args[i].size() <= kMaxConfigPatternBytes && GlobMatch(args[i], kv.first)) {
        hits.push_back(&kv);
        break;
      }
    }
  }
  resp::AppendArrayHeader(out, hits.size() * 2);
  for (const auto* kv : hits) {
    resp::AppendBulk(out, kv->first);
    resp::AppendBulk(out, kv->second);
  }
}

void CommandExecutor::ConfigSet(std::vector<std::string>& args, std::string* out) {
  if (args.size() < 4 || args.size() % 2 != 0) return ErrWrongArgs("config|set", out);
  if (!config_setter_) return resp::AppendError(out, "ERR CONFIG SET is not available here");
  std::vector<std::pair<std::string, std::string>> changes;
  for (size_t i = 2; i + 1 < args.size(); i += 2) changes.emplace_back(Lower(args[i]), args[i + 1]);
  Status st = config_setter_(changes);
  if (!st.ok()) return resp::AppendError(out, "ERR CONFIG SET failed: " + st.message());
  resp::AppendSimple(out, "OK");
}

std::string CommandExecutor::Info(std::string_view section) const {
  std::string want = Lower(section);
  bool all = want.empty() || want == "all" || want == "default" || want == "everything";
  std::string s;
  auto add = [&](const char* name) {
    if (!all && want != name) return false;
    if (!s.empty()) s += "\r\n";
    std::string title = name;
    title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
    s += "# " + title + "\r\n";
    return true;
  };
  if (add("server")) AppendServerInfo(&s);
  if (add("clients")) AppendClientsInfo(&s);
  if (add("memory")) AppendMemoryInfo(&s);
  if (add("persistence")) AppendPersistenceInfo(&s);
  if (add("stats")) AppendStatsInfo(&s);
  if (add("cpu")) AppendCpuInfo(&s);
  if (add("cluster") && cluster_info_) s += cluster_info_();
  if (add("keyspace")) {
    // This node's exact count of the keys it stores holding a value (Store's
    // value_keys; DBSIZE is the cluster's).
    const uint64_t keys = store_.value_keys();
    if (keys > 0) Line(&s, "db0", "keys=" + std::to_string(keys) + ",expires=0,avg_ttl=0");
  }
  if (add("handoff") && handoff_info_) s += handoff_info_();
  if (add("repair")) s += RepairInfo();
  if (add("tls") && tls_info_) s += tls_info_();
  return s;
}

void CommandExecutor::AppendServerInfo(std::string* s) const {
  const int64_t uptime_s = (clock_.MonotonicMs() - stats_.start_mono_ms) / 1000;
  Line(s, "itsuka_version", kVersion);
  Line(s, "redis_version", kRedisCompatVersion);
  Line(s, "redis_mode", "standalone");
  Line(s, "node_id", config_.node_id);
  Line(s, "process_id", std::to_string(::getpid()));
  Line(s, "tcp_port", std::to_string(config_.port));
  Line(s, "uptime_in_seconds", std::to_string(uptime_s));
  Line(s, "uptime_in_days", std::to_string(uptime_s / 86400));
  Line(s, "config_file", config_.config_file);
}

void CommandExecutor::AppendClientsInfo(std::string* s) const {
  Line(s, "connected_clients", std::to_string(stats_.connected_clients));
  Line(s, "maxclients", std::to_string(config_.max_clients));
  Line(s, "blocked_clients", "0");
}

void CommandExecutor::AppendMemoryInfo(std::string* s) const {
  // used_memory is the heap in use, as Redis tooling expects; mem_clients_normal is the
  // accounted client memory that server.max_memory_bytes bounds (buffers, replies and
  // read results of every client); RSS is the whole process.
  const int64_t allocated = AllocatedBytes();
  stats_.allocated_peak_bytes = std::max(stats_.allocated_peak_bytes, allocated);
  Line(s, "used_memory", std::to_string(allocated));
  Line(s, "used_memory_peak", std::to_string(stats_.allocated_peak_bytes));
  const int64_t rss = ProcessRssBytes();
  Line(s, "used_memory_rss", std::to_string(rss));
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.2f",
                allocated > 0 ? static_cast<double>(rss) / static_cast<double>(allocated) : 0.0);
  Line(s, "mem_fragmentation_ratio", ratio);
  Line(s, "mem_clients_normal", std::to_string(stats_.client_memory_bytes));
  Line(s, "mem_clients_normal_peak", std::to_string(stats_.client_memory_peak_bytes));
  Line(s, "maxmemory", std::to_string(config_.max_memory_bytes));
  Line(s, "maxmemory_policy", "noeviction");
  Line(s, "max_memory_bytes", std::to_string(config_.max_memory_bytes));
  Line(s, "over_max_memory", OverMemoryLimit() ? "1" : "0");
}

void CommandExecutor::AppendPersistenceInfo(std::string* s) const {
  EngineStats es = store_.engine().Stats();
  Line(s, "loading", "0");
  Line(s, "storage_engine", "rocksdb");
  Line(s, "durability", config_.durability);
  Line(s, "data_dir", config_.data_dir);
  Line(s, "commits", std::to_string(store_.commits()));
  Line(s, "committed_keys", std::to_string(store_.committed_keys()));
  Line(s, "failed_commits", std::to_string(store_.failed_commits()));
  // The cache of committed objects (storage.object_cache_mb).
  const ObjectCache& oc = store_.object_cache();
  Line(s, "object_cache_bytes", std::to_string(oc.bytes()));
  Line(s, "object_cache_max_bytes", std::to_string(oc.max_bytes()));
  Line(s, "object_cache_entries", std::to_string(oc.entries()));
  Line(s, "object_cache_hits", std::to_string(oc.hits()));
  Line(s, "object_cache_misses", std::to_string(oc.misses()));
  Line(s, "object_cache_evictions", std::to_string(oc.evictions()));
  // Corruption (README "Corruption and I/O errors").
  Line(s, "storage_corruptions", std::to_string(store_.corruptions()));
  Line(s, "wal_corruptions", std::to_string(store_.wal_corruptions()));
  Line(s, "partitions_not_authoritative", std::to_string(store_.suspect().size()));
  Line(s, "last_corruption", store_.last_corruption().empty() ? "-" : store_.last_corruption());
  Line(s, "synced_writes", std::to_string(es.synced_writes));
  Line(s, "estimated_live_data_bytes", std::to_string(es.live_data_bytes));
  Line(s, "rocksdb_memtable_bytes", std::to_string(es.memtable_bytes));
  Line(s, "rocksdb_block_cache_bytes", std::to_string(es.block_cache_bytes));
  Line(s, "rocksdb_pending_compaction_bytes", std::to_string(es.pending_compaction_bytes));
  Line(s, "rocksdb_sst_files_bytes", std::to_string(es.sst_files_bytes));
  Line(s, "rocksdb_delayed_write_rate", std::to_string(es.delayed_write_rate));
  Line(s, "rocksdb_write_stopped", std::to_string(es.write_stopped));
  Line(s, "rdb_bgsave_in_progress", "0");
  Line(s, "aof_enabled", "0");
}

void CommandExecutor::AppendStatsInfo(std::string* s) const {
  Line(s, "total_connections_received", std::to_string(stats_.connections_received));
  Line(s, "total_commands_processed", std::to_string(stats_.commands_processed));
  Line(s, "instantaneous_ops_per_sec", std::to_string(stats_.instantaneous_ops_per_sec));
  Line(s, "total_net_input_bytes", std::to_string(stats_.net_input_bytes));
  Line(s, "total_net_output_bytes", std::to_string(stats_.net_output_bytes));
  Line(s, "rejected_connections", std::to_string(stats_.rejected_connections));
  Line(s, "keyspace_hits", std::to_string(stats_.keyspace_hits));
  Line(s, "keyspace_misses", std::to_string(stats_.keyspace_misses));
  Line(s, "total_error_replies", std::to_string(stats_.error_replies));
  Line(s, "protocol_errors", std::to_string(stats_.protocol_errors));
  Line(s, "query_buffer_disconnects", std::to_string(stats_.query_buffer_disconnects));
  Line(s, "output_buffer_disconnects", std::to_string(stats_.output_buffer_disconnects));
  Line(s, "idle_disconnects", std::to_string(stats_.idle_disconnects));
  Line(s, "oom_refusals", std::to_string(stats_.oom_refusals));
  Line(s, "deferred_commands", std::to_string(stats_.deferred_commands));
  Line(s, "reply_limit_refusals", std::to_string(stats_.reply_limit_refusals));
  Line(s, "memory_evictions", std::to_string(stats_.memory_evictions));
  Line(s, "unauth_idle_disconnects", std::to_string(stats_.unauth_idle_disconnects));
  Line(s, "unauth_evictions", std::to_string(stats_.unauth_evictions));
  Line(s, "clients_closed_for_limits",
       std::to_string(stats_.query_buffer_disconnects + stats_.output_buffer_disconnects +
                      stats_.memory_evictions + stats_.unauth_idle_disconnects +
                      stats_.unauth_evictions));
  Line(s, "auth_failures", std::to_string(stats_.auth_failures));
  Line(s, "auth_rate_limited", std::to_string(stats_.auth_rate_limited));
  Line(s, "transactions_committed", std::to_string(stats_.txn_committed));
  Line(s, "transactions_aborted", std::to_string(stats_.txn_aborted));
  Line(s, "transactions_watch_failed", std::to_string(stats_.txn_watch_failed));
  Line(s, "cas_retries", std::to_string(stats_.cas_retries));
}

void CommandExecutor::InfoCmd(Session&, std::vector<std::string>& args, std::string* out) {
  std::string text;
  if (args.size() == 1) {
    text = Info("");
  } else {
    for (size_t i = 1; i < args.size(); ++i) {
      std::string part = Info(args[i]);
      if (part.empty()) continue;
      if (!text.empty()) text += "\r\n";
      text += part;
    }
  }
  resp::AppendBulk(out, text);
}

// ---- Keys --------------------------------------------------------------------------

void AppendStatusError(const Status& st, std::string* out) {
  switch (st.code()) {
    case Status::Code::kTooBig: return resp::AppendError(out, "TOOBIG " + st.message());
    case Status::Code::kSiblings: return resp::AppendError(out, "SIBLINGS " + st.message());
    case Status::Code::kUnavailable: return resp::AppendError(out, "UNAVAILABLE " + st.message());
    case Status::Code::kTimeout: return resp::AppendError(out, "TIMEOUT " + st.message());
    case Status::Code::kBusy: return resp::AppendError(out, "BUSY " + st.message());
    case Status::Code::kTryAgain: return resp::AppendError(out, "TRYAGAIN " + st.message());
    case Status::Code::kInvalidArgument: return resp::AppendError(out, "ERR " + st.message());
    // A storage I/O error (a full disk): the message says whether it was applied.
    case Status::Code::kIOError: return resp::AppendError(out, "IOERR " + st.message());
    default: return resp::AppendError(out, "ERR storage: " + st.ToString());
  }
}

namespace {

// The first failed result, if any: a multi-key command reports it instead of a
// partial answer.
const core::ClientResult* FirstError(const PendingReply& r) {
  for (const core::ClientResult& c : r.results) {
    if (!c.status.ok()) return &c;
  }
  return nullptr;
}

}  // namespace

bool CommandExecutor::ResolveQuorum(const std::string& name, const std::string& text, int* out,
                                    std::string* err) {
  const int effective = std::max(1, core_.EffectiveN());
  std::string t = Lower(text);
  if (t == "one" || t == "quorum" || t == "all") {
    *out = *core::ParseQuorum(t, effective);
    return true;
  }
  int64_t v = 0;
  if (!ParseInt(t, &v) || v < (name[0] == 'P' ? 0 : 1) || v > config_.n) {
    resp::AppendError(err, "ERR " + name + " must be one, quorum, all or a number from " +
                               (name[0] == 'P' ? "0" : "1") + " to " + std::to_string(config_.n));
    return false;
  }
  *out = static_cast<int>(v);
  return true;
}

bool CommandExecutor::SessionQuorums(const Session& session, Quorums* q, std::string* err) {
  q->consistent = session.consistent;
  return ResolveQuorum("R", session.r.empty() ? config_.read_quorum : session.r, &q->r, err) &&
         ResolveQuorum("W", session.w.empty() ? config_.write_quorum : session.w, &q->w, err) &&
         ResolveQuorum("PR", session.pr.empty() ? "0" : session.pr, &q->pr, err) &&
         ResolveQuorum("PW", session.pw.empty() ? "0" : session.pw, &q->pw, err);
}

void CommandExecutor::Await(size_t n, std::function<void(PendingReply&)> render) {
  reply_->results.resize(n);
  reply_->waiting = n;
  reply_->render = std::move(render);
}

void CommandExecutor::StartGet(size_t index, const std::string& key, const Quorums& q) {
  if (q.consistent) return dispatch_->Consistent(*reply_, index, key, true, {});
  dispatch_->Get(*reply_, index, key, q.r, std::min(q.pr, q.r));
}

void CommandExecutor::StartPut(size_t index, const std::string& key, core::WriteSpec spec,
                               const Quorums& q) {
  if (q.consistent) return dispatch_->Consistent(*reply_, index, key, false, std::move(spec));
  dispatch_->Put(*reply_, index, key, std::move(spec), q.w, std::min(q.pw, q.w));
}

void CommandExecutor::AppendValues(const core::Object& obj, std::string* out) {
  if (core::HasCounter(obj)) {
    // A counter's siblings read as one value (core/counter.h).
    if (std::optional<core::CounterView> v = core::ReadCounter(obj, clock_.WallMs())) {
      ++(v->exists ? stats_.keyspace_hits : stats_.keyspace_misses);
      if (!v->exists) return resp::AppendNull(out);
      return resp::AppendBulk(out, std::to_string(v->value));
    }
  }
  std::vector<const core::Sibling*> live = core::LiveSiblings(obj, clock_.WallMs());
  if (live.empty()) {
    ++stats_.keyspace_misses;
    return resp::AppendNull(out);
  }
  ++stats_.keyspace_hits;
  if (live.size() == 1) return resp::AppendBulk(out, live[0]->value);
  resp::AppendArrayHeader(out, live.size());
  for (const core::Sibling* s : live) resp::AppendBulk(out, s->value);
}

// Parses [R n] [PR n] (reads) or [W n] [PW n] (writes) at args[i]; returns false if
// args[i] is not such an option. On a bad value sets *bad.
namespace {
bool IsQuorumOption(const std::string& opt, bool write) {
  return write ? (opt == "w" || opt == "pw") : (opt == "r" || opt == "pr");
}
}  // namespace

void CommandExecutor::Get(Session& session, std::vector<std::string>& args, std::string* out) {
  Quorums q;
  if (!SessionQuorums(session, &q, out)) return;
  for (size_t i = 2; i < args.size(); ++i) {
    std::string opt = Lower(args[i]);
    if (IsQuorumOption(opt, false) && i + 1 < args.size()) {
      if (!ResolveQuorum(opt == "r" ? "R" : "PR", args[++i], opt == "r" ? &q.r : &q.pr, out)) return;
    } else if (opt == "consistent") {
      q.consistent = true;
    } else {
      return ErrSyntax(out);
    }
  }
  const bool vget = IEquals(args[0], "vget");
  Await(1, [this, vget](PendingReply& r) {
    const core::ClientResult& res = r.results[0];
    if (!res.status.ok()) return AppendStatusError(res.status, &r.data);
    if (!vget) return AppendValues(res.object, &r.data);
    std::vector<const core::Sibling*> live = core::LiveSiblings(res.object, clock_.WallMs());
    resp::AppendArrayHeader(&r.data, 2);
    resp::AppendBulk(&r.data, wire::EncodeContext(res.object.clock));
    resp::AppendArrayHeader(&r.data, live.size());
    for (const core::Sibling* s : live) resp::AppendBulk(&r.data, s->value);
  });
  StartGet(0, args[1], q);
}

void CommandExecutor::VGet(Session& session, std::vector<std::string>& args, std::string* out) {
  Get(session, args, out);
}

void CommandExecutor::Del(Session& session, std::vector<std::string>& args, std::string* out) {
  Quorums q;
  if (!SessionQuorums(session, &q, out)) return;
  const int64_t now = clock_.WallMs();
  Await(args.size() - 1, [](PendingReply& r) {
    if (const core::ClientResult* e = FirstError(r)) return AppendStatusError(e->status, &r.data);
    int64_t n = 0;
    for (const core::ClientResult& c : r.results) n += c.applied ? 1 : 0;
    resp::AppendInteger(&r.data, n);
  });
  for (size_t i = 1; i < args.size(); ++i) {
    core::WriteSpec spec;
    spec.version = core::NewVersion{true, {}, 0, now};
    spec.cond = core::WriteSpec::Cond::kIfLive;
    StartPut(i - 1, args[i], std::move(spec), q);
  }
}

void CommandExecutor::Exists(Session& session, std::vector<std::string>& args, std::string* out) {
  Quorums q;
  if (!SessionQuorums(session, &q, out)) return;
  Await(args.size() - 1, [this](PendingReply& r) {
    if (const core::ClientResult* e = FirstError(r)) return AppendStatusError(e->status, &r.data);
    const int64_t now = clock_.WallMs();
    int64_t n = 0;
    for (const core::ClientResult& c : r.results) n += core::LiveSiblings(c.object, now).empty() ? 0 : 1;
    resp::AppendInteger(&r.data, n);
  });
  for (size_t i = 1; i < args.size(); ++i) StartGet(i - 1, args[i], q);
}

void CommandExecutor::MGet(Session& session, std::vector<std::string>& args, std::string* out) {
  Quorums q;
  if (!SessionQuorums(session, &q, out)) return;
  Await(args.size() - 1, [this](PendingReply& r) {
    if (const core::ClientResult* e = FirstError(r)) return AppendStatusError(e->status, &r.data);
    resp::AppendArrayHeader(&r.data, r.results.size());
    for (const core::ClientResult& c : r.results) AppendValues(c.object, &r.data);
  });
  for (size_t i = 1; i < args.size(); ++i) StartGet(i - 1, args[i], q);
}

void CommandExecutor::MSet(Session& session, std::vector<std::string>& args, std::string* out) {
  if (args.size() % 2 != 1) return ErrWrongArgs("mset", out);
  Quorums q;
  if (!SessionQuorums(session, &q, out)) return;
  // A key given twice: only its last value is written, as if applied in order.
  std::unordered_map<std::string_view, size_t> last;
  for (size_t i = 1; i < args.size(); i += 2) last[args[i]] = i;
  const int64_t now = clock_.WallMs();
  Await(last.size(), [](PendingReply& r) {
    if (const core::ClientResult* e = FirstError(r)) return AppendStatusError(e->status, &r.data);
    resp::AppendSimple(&r.data, "OK");
  });
  size_t index = 0;
  for (size_t i = 1; i < args.size(); i += 2) {
    if (last[args[i]] != i) continue;
    core::WriteSpec spec;
    spec.version = core::NewVersion{false, args[i + 1], 0, now};
    StartPut(index++, args[i], std::move(spec), q);
  }
}

void CommandExecutor::Defaults(Session& session, std::vector<std::string>& args,
                               std::string* out) {
  Session next = session;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string opt = Lower(args[i]);
    if (i + 1 >= args.size()) return ErrSyntax(out);
    const std::string& value = args[++i];
    int ignored = 0;
    if (opt == "r" || opt == "w" || opt == "pr" || opt == "pw") {
      std::string upper = opt;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (!ResolveQuorum(upper, value, &ignored, out)) return;
      (opt == "r" ? next.r : opt == "w" ? next.w : opt == "pr" ? next.pr : next.pw) = value;
    } else if (opt == "consistent") {
      if (IEquals(value, "off") || IEquals(value, "on")) {
        next.consistent = IEquals(value, "on");
        continue;
      }
      return ErrSyntax(out);
    } else {
      return ErrSyntax(out);
    }
  }
  session = next;
  if (args.size() > 1) return resp::AppendSimple(out, "OK");
  // Without arguments: show the connection's effective defaults.
  resp::AppendArrayHeader(out, 10);
  const std::pair<const char*, std::string> show[] = {
      {"R", session.r.empty() ? config_.read_quorum : session.r},
      {"W", session.w.empty() ? config_.write_quorum : session.w},
      {"PR", session.pr.empty() ? "0" : session.pr},
      {"PW", session.pw.empty() ? "0" : session.pw},
      {"CONSISTENT", session.consistent ? "on" : "off"}};
  for (const auto& [k, v] : show) {
    resp::AppendBulk(out, k);
    resp::AppendBulk(out, v);
  }
}

void CommandExecutor::Hints(Session&, std::vector<std::string>&, std::string* out) {
  resp::AppendBulk(out, handoff_info_ ? handoff_info_() : std::string());
}

}  // namespace itsuka::server
