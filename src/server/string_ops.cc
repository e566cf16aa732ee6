#include "server/string_ops.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "wire/object_codec.h"
#include "wire/resp.h"

namespace itsuka::server {
namespace {

namespace resp = wire::resp;
using Kind = StringOp::Kind;
using Cond = StringOp::Cond;

// Expiry times are bounded so that no arithmetic on them overflows (about 290,000
// years in milliseconds), as SET always did.
constexpr int64_t kMaxExpiryMs = int64_t{1} << 53;

std::string Lower(std::string_view s) { return AsciiLower(s); }

bool ParseInt(std::string_view s, int64_t* out) { return ParseInt64(s, out); }

bool Fail(std::string* err, std::string_view msg) {
  resp::AppendError(err, msg);
  return false;
}

bool FailNotInteger(std::string* err) {
  return Fail(err, "ERR value is not an integer or out of range");
}

bool FailExpireTime(const std::string& name, std::string* err) {
  return Fail(err, "ERR invalid expire time in '" + name + "' command");
}

bool FailTooBig(size_t bytes, std::string* err) {
  return Fail(err, "TOOBIG value of " + std::to_string(bytes) +
                       " bytes is over limits.max_object_bytes");
}

void AppendStringTooLong(std::string* reply) {
  resp::AppendError(reply, "ERR string exceeds maximum allowed size (limits.max_object_bytes)");
}

// Replication options at args[*i] (R/PR for reads, W/PW for writes, CONSISTENT, and
// CTX for SET): consumes them and returns true, or returns false if args[*i] is none.
bool ParseReplicationOption(const std::vector<std::string>& args, size_t* i, bool write,
                            bool allow_ctx, ReplicationOptions* repl, std::string* err,
                            bool* failed) {
  const std::string opt = Lower(args[*i]);
  const bool has_next = *i + 1 < args.size();
  if (opt == "consistent") {
    repl->consistent = true;
    return true;
  }
  const bool quorum = write ? (opt == "w" || opt == "pw") : (opt == "r" || opt == "pr");
  if (quorum && has_next) {
    std::string name = opt;
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    repl->quorums.emplace_back(std::move(name), args[++*i]);
    return true;
  }
  if (allow_ctx && opt == "ctx" && has_next && !repl->has_context) {
    Result<core::VClock> ctx = wire::DecodeContext(args[++*i]);
    if (!ctx.ok()) {
      *failed = !Fail(err, "ERR invalid CTX token (use the one VGET returned)");
      return true;
    }
    repl->has_context = true;
    repl->context = std::move(ctx).value();
    return true;
  }
  return false;
}

// Trailing options from args[from]: of a read (R, PR, CONSISTENT) or of a blind
// write (W, PW, CONSISTENT).
bool ParseTrailingOptions(const std::vector<std::string>& args, size_t from, bool write,
                          ReplicationOptions* repl, std::string* err) {
  bool failed = false;
  for (size_t i = from; i < args.size(); ++i) {
    if (!ParseReplicationOption(args, &i, write, false, repl, err, &failed)) {
      return Fail(err, "ERR syntax error");
    }
  }
  return !failed;
}

bool ParseReadOptions(const std::vector<std::string>& args, size_t from, ReplicationOptions* repl,
                      std::string* err) {
  return ParseTrailingOptions(args, from, false, repl, err);
}

bool ParseWriteOptions(const std::vector<std::string>& args, size_t from, ReplicationOptions* repl,
                       std::string* err) {
  return ParseTrailingOptions(args, from, true, repl, err);
}

// An EX/PX/EXAT/PXAT value as SET and GETEX take it: a positive integer.
bool ParseExpiryValue(const std::string& opt, const std::string& text, const std::string& name,
                      Expiry* out, std::string* err) {
  int64_t v = 0;
  if (!ParseInt(text, &v)) return FailNotInteger(err);
  const bool seconds = opt == "ex" || opt == "exat";
  if (v <= 0 || v > (seconds ? kMaxExpiryMs / 1000 : kMaxExpiryMs)) {
    return FailExpireTime(name, err);
  }
  out->kind = (opt == "ex" || opt == "px") ? Expiry::Kind::kRelative : Expiry::Kind::kAbsolute;
  out->ms = seconds ? v * 1000 : v;
  return true;
}

bool IsExpiryOption(const std::string& opt) {
  return opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat";
}

bool ParseSet(const std::vector<std::string>& args, StringOp* op, ReplicationOptions* repl,
              std::string* err) {
  op->kind = Kind::kSet;
  op->keys = {args[1]};
  op->values = {args[2]};
  bool failed = false;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string opt = Lower(args[i]);
    const bool has_next = i + 1 < args.size();
    const Expiry::Kind e = op->expiry.kind;
    if (opt == "nx" && op->cond == Cond::kNone) {
      op->cond = Cond::kNx;
    } else if (opt == "xx" && op->cond == Cond::kNone) {
      op->cond = Cond::kXx;
    } else if (opt == "get" && op->set_reply == StringOp::SetReply::kOk) {
      op->set_reply = StringOp::SetReply::kOld;
    } else if (opt == "keepttl" && e == Expiry::Kind::kNone) {
      op->expiry.kind = Expiry::Kind::kKeep;
    } else if (IsExpiryOption(opt) && has_next && e == Expiry::Kind::kNone) {
      if (!ParseExpiryValue(opt, args[++i], "set", &op->expiry, err)) return false;
    } else if (!ParseReplicationOption(args, &i, true, true, repl, err, &failed)) {
      return Fail(err, "ERR syntax error");
    }
    if (failed) return false;
  }
  return true;
}

// SETNX k v, SETEX k s v, PSETEX k ms v, GETSET k v: SET with fixed options.
bool ParseSetVariant(const std::string& name, const std::vector<std::string>& args, StringOp* op,
                     ReplicationOptions* repl, std::string* err) {
  op->kind = Kind::kSet;
  op->keys = {args[1]};
  if (name == "setnx" || name == "getset") {
    op->values = {args[2]};
    if (name == "getset") {
      op->set_reply = StringOp::SetReply::kOld;
      return args.size() == 3 || Fail(err, "ERR syntax error");
    }
    op->cond = Cond::kNx;
    op->set_reply = StringOp::SetReply::kInteger;
    return ParseWriteOptions(args, 3, repl, err);
  }
  // SETEX / PSETEX key time value
  op->values = {args[3]};
  if (!ParseExpiryValue(name == "setex" ? "ex" : "px", args[2], name, &op->expiry, err)) {
    return false;
  }
  return ParseWriteOptions(args, 4, repl, err);
}

bool ParseGetEx(const std::vector<std::string>& args, StringOp* op, ReplicationOptions* repl,
                std::string* err) {
  op->kind = Kind::kGetEx;
  op->keys = {args[1]};
  bool failed = false;
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string opt = Lower(args[i]);
    const bool free = op->expiry.kind == Expiry::Kind::kNone;
    if (IsExpiryOption(opt) && i + 1 < args.size() && free) {
      if (!ParseExpiryValue(opt, args[++i], "getex", &op->expiry, err)) return false;
    } else if (opt == "persist" && free) {
      op->expiry.kind = Expiry::Kind::kPersist;
    } else if (!ParseReplicationOption(args, &i, false, false, repl, err, &failed)) {
      return Fail(err, "ERR syntax error");
    }
    if (failed) return false;
  }
  // With an expiry option GETEX writes: it runs CONSISTENT, read quorums do not apply.
  if (op->expiry.kind != Expiry::Kind::kNone && !repl->quorums.empty()) {
    return Fail(err, "ERR syntax error");
  }
  return true;
}

// EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT key time [NX|XX|GT|LT].
bool ParseExpire(const std::string& name, const std::vector<std::string>& args, StringOp* op,
                 std::string* err) {
  op->kind = Kind::kExpire;
  op->keys = {args[1]};
  int64_t v = 0;
  if (!ParseInt(args[2], &v)) return FailNotInteger(err);
  const bool seconds = name == "expire" || name == "expireat";
  const int64_t bound = seconds ? kMaxExpiryMs / 1000 : kMaxExpiryMs;
  if (v > bound || v < -bound) return FailExpireTime(name, err);
  const bool absolute = name == "expireat" || name == "pexpireat";
  op->expiry.kind = absolute ? Expiry::Kind::kAbsolute : Expiry::Kind::kRelative;
  op->expiry.ms = seconds ? v * 1000 : v;
  bool nx = false, xx = false, gt = false, lt = false;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string opt = Lower(args[i]);
    if (opt == "nx") nx = true;
    else if (opt == "xx") xx = true;
    else if (opt == "gt") gt = true;
    else if (opt == "lt") lt = true;
    else return Fail(err, "ERR Unsupported option " + args[i].substr(0, 64));
  }
  if (nx && (xx || gt || lt)) {
    return Fail(err, "ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if (gt && lt) return Fail(err, "ERR GT and LT options at the same time are not compatible");
  op->cond = nx ? Cond::kNx : xx ? Cond::kXx : Cond::kNone;
  op->gt = gt;
  op->lt = lt;
  return true;
}

bool ParseRange(const std::vector<std::string>& args, StringOp* op, ReplicationOptions* repl,
                std::string* err) {
  op->kind = Kind::kGetRange;
  op->keys = {args[1]};
  if (!ParseInt(args[2], &op->start) || !ParseInt(args[3], &op->end)) return FailNotInteger(err);
  return ParseReadOptions(args, 4, repl, err);
}

bool ParseSetRange(const std::vector<std::string>& args, const ParseLimits& limits, StringOp* op,
                   std::string* err) {
  op->kind = Kind::kSetRange;
  op->keys = {args[1]};
  op->values = {args[3]};
  if (!ParseInt(args[2], &op->start)) return FailNotInteger(err);
  if (op->start < 0) return Fail(err, "ERR offset is out of range");
  if (!args[3].empty() &&
      op->start > limits.max_value_bytes - static_cast<int64_t>(args[3].size())) {
    return Fail(err, "ERR string exceeds maximum allowed size (limits.max_object_bytes)");
  }
  return true;
}

// MSET / MSETNX key value [key value ...].
bool ParseMSet(const std::string& name, const std::vector<std::string>& args, StringOp* op,
               std::string* err) {
  if (args.size() % 2 != 1) {
    return Fail(err, "ERR wrong number of arguments for '" + name + "' command");
  }
  op->kind = Kind::kMSet;
  for (size_t i = 1; i < args.size(); i += 2) {
    op->keys.push_back(args[i]);
    op->values.push_back(args[i + 1]);
  }
  if (name == "msetnx") {
    op->cond = Cond::kNx;
    op->set_reply = StringOp::SetReply::kInteger;
  }
  return true;
}

// Commands whose arguments are keys only.
const std::unordered_map<std::string, Kind>& KeyOnlyCommands() {
  static const auto* m = new std::unordered_map<std::string, Kind>{
      {"del", Kind::kDel},   {"exists", Kind::kExists},       {"mget", Kind::kMGet},
      {"ttl", Kind::kTtl},   {"pttl", Kind::kTtl},            {"expiretime", Kind::kExpireTime},
      {"pexpiretime", Kind::kExpireTime}, {"getdel", Kind::kGetDel}, {"persist", Kind::kPersist}};
  return *m;
}

bool ParseByName(const std::string& name, const std::vector<std::string>& args,
                 const ParseLimits& limits, StringOp* op, ReplicationOptions* repl,
                 std::string* err) {
  if (auto it = KeyOnlyCommands().find(name); it != KeyOnlyCommands().end()) {
    op->kind = it->second;
    op->keys.assign(args.begin() + 1, args.end());
    op->millis = name[0] == 'p' && name != "persist";
    return true;
  }
  if (name == "get") {
    op->keys = {args[1]};
    return ParseReadOptions(args, 2, repl, err);
  }
  if (name == "strlen") {
    op->kind = Kind::kStrlen;
    op->keys = {args[1]};
    return ParseReadOptions(args, 2, repl, err);
  }
  if (name == "set") return ParseSet(args, op, repl, err);
  if (name == "setnx" || name == "setex" || name == "psetex" || name == "getset") {
    return ParseSetVariant(name, args, op, repl, err);
  }
  if (name == "getex") return ParseGetEx(args, op, repl, err);
  if (name == "getrange") return ParseRange(args, op, repl, err);
  if (name == "setrange") return ParseSetRange(args, limits, op, err);
  if (name == "incrbyfloat") {
    long double ignored = 0;
    if (!ParseFloat(args[2], &ignored)) {
      err->append("-ERR value is not a valid float\r\n");
      return false;
    }
    op->kind = Kind::kIncrByFloat;
    op->keys = {args[1]};
    op->values = {args[2]};
    return true;
  }
  if (name == "append") {
    op->kind = Kind::kAppend;
    op->keys = {args[1]};
    op->values = {args[2]};
    return true;
  }
  if (name == "mset" || name == "msetnx") return ParseMSet(name, args, op, err);
  if (name == "expire" || name == "pexpire" || name == "expireat" || name == "pexpireat") {
    return ParseExpire(name, args, op, err);
  }
  if (name == "ping" || name == "echo" || name == "unwatch") {
    op->kind = name == "ping" ? Kind::kPing : name == "echo" ? Kind::kEcho : Kind::kUnwatch;
    op->values.assign(args.begin() + 1, args.end());
    return name != "ping" || args.size() <= 2 ||
           Fail(err, "ERR wrong number of arguments for 'ping' command");
  }
  return Fail(err, "ERR unknown command '" + name.substr(0, 128) + "'");
}

// ---- Applying --------------------------------------------------------------------

void AppendGetReply(const KeyState& s, std::string* reply) {
  if (s.live.empty()) return resp::AppendNull(reply);
  if (s.live.size() == 1) return resp::AppendBulk(reply, s.live[0].value);
  resp::AppendArrayHeader(reply, s.live.size());
  for (const KeyState::Version& v : s.live) resp::AppendBulk(reply, v.value);
}

// True if the state has at most one version; else appends the -SIBLINGS error.
bool Single(const KeyState& s, std::string* reply) {
  if (s.live.size() <= 1) return true;
  resp::AppendError(reply, "SIBLINGS the key has " + std::to_string(s.live.size()) +
                               " concurrent versions; read them with VGET and resolve "
                               "them with SET ... CTX");
  return false;
}

// Replaces the state by one value expiring at `expire_at_ms` (0: never); an expiry
// not after `now_ms` leaves the key deleted, as a reader would see it.
void Put(KeyState* s, std::string value, int64_t expire_at_ms, int64_t now_ms) {
  s->live.clear();
  if (expire_at_ms == 0 || expire_at_ms > now_ms) {
    s->live.push_back({std::move(value), expire_at_ms});
  }
  s->changed = true;
}

void Delete(KeyState* s) {
  s->live.clear();
  s->changed = true;
}

void ApplySet(const StringOp& op, int64_t now, KeyState* s, std::string* reply) {
  std::string old;
  if (op.set_reply == StringOp::SetReply::kOld) AppendGetReply(*s, &old);
  const bool holds = (op.cond != Cond::kNx || !s->exists()) && (op.cond != Cond::kXx || s->exists());
  if (holds) {
    int64_t expire = 0;
    if (op.expiry.kind == Expiry::Kind::kKeep && s->live.size() == 1) expire = s->live[0].expire_at_ms;
    if (op.expiry.sets_time()) expire = op.expiry.At(now);
    Put(s, op.values.back(), expire, now);
  }
  switch (op.set_reply) {
    case StringOp::SetReply::kOk: return holds ? resp::AppendSimple(reply, "OK") : resp::AppendNull(reply);
    case StringOp::SetReply::kInteger: return resp::AppendInteger(reply, holds ? 1 : 0);
    case StringOp::SetReply::kOld: *reply += old; return;
  }
}

void ApplyMSet(const StringOp& op, int64_t now, KeyState* s, std::string* reply) {
  const bool holds = op.cond != Cond::kNx || !s->exists();
  if (holds) Put(s, op.values.back(), 0, now);
  if (op.set_reply == StringOp::SetReply::kInteger) return resp::AppendInteger(reply, holds ? 1 : 0);
  resp::AppendSimple(reply, "OK");
}

// TTL, PTTL, EXPIRETIME, PEXPIRETIME: with siblings, the key lives as long as its
// longest-lived version.
void ApplyTtl(const StringOp& op, int64_t now, const KeyState& s, std::string* reply) {
  if (!s.exists()) return resp::AppendInteger(reply, -2);
  int64_t expire = 0;
  for (const KeyState::Version& v : s.live) {
    if (v.expire_at_ms == 0) return resp::AppendInteger(reply, -1);
    expire = std::max(expire, v.expire_at_ms);
  }
  const int64_t t = op.kind == Kind::kTtl ? std::max<int64_t>(0, expire - now) : expire;
  resp::AppendInteger(reply, op.millis ? t : (t + 500) / 1000);
}

void ApplyGetRange(const StringOp& op, const KeyState& s, std::string* reply) {
  if (!Single(s, reply)) return;
  const std::string empty;
  const std::string& v = s.exists() ? s.live[0].value : empty;
  const int64_t len = static_cast<int64_t>(v.size());
  int64_t start = op.start, end = op.end;
  if (start < 0 && end < 0 && start > end) return resp::AppendBulk(reply, "");
  if (start < 0) start = std::max<int64_t>(0, len + start);
  if (end < 0) end = std::max<int64_t>(0, len + end);
  if (end >= len) end = len - 1;
  if (len == 0 || start > end) return resp::AppendBulk(reply, "");
  resp::AppendBulk(reply, std::string_view(v).substr(start, end - start + 1));
}

void ApplySetRange(const StringOp& op, int64_t now, KeyState* s, std::string* reply) {
  if (!Single(*s, reply)) return;
  const std::string& patch = op.values[0];
  if (patch.empty()) {
    return resp::AppendInteger(reply, s->exists() ? static_cast<int64_t>(s->live[0].value.size()) : 0);
  }
  // Patched in place: a transaction may queue thousands of SETRANGEs of one large
  // value, and copying it for each would stall the loop thread for seconds.
  if (!s->exists()) Put(s, std::string(), 0, now);
  std::string& v = s->live[0].value;
  const size_t offset = static_cast<size_t>(op.start);
  if (v.size() < offset + patch.size()) v.resize(offset + patch.size(), '\0');
  v.replace(offset, patch.size(), patch);
  s->changed = true;
  resp::AppendInteger(reply, static_cast<int64_t>(v.size()));
}

// INCRBYFLOAT: Redis's rule (the value and the increment parse as long doubles, the
// result must be finite) and Redis's rendering (%.17Lg, so 10.5 + 0.1 is 10.6).
void ApplyIncrByFloat(const StringOp& op, int64_t now, KeyState* s, std::string* reply) {
  if (!Single(*s, reply)) return;
  long double v = 0, by = 0;
  if (s->exists() && !ParseFloat(s->live[0].value, &v)) {
    return resp::AppendError(reply, "ERR value is not a valid float");
  }
  ParseFloat(op.values[0], &by);
  const long double sum = v + by;
  if (std::isnan(sum) || std::isinf(sum)) {
    return resp::AppendError(reply, "ERR increment would produce NaN or Infinity");
  }
  char buf[5200];
  const int n = std::snprintf(buf, sizeof(buf), "%.17Lf", sum);
  std::string text(buf, n > 0 ? std::min(static_cast<size_t>(n), sizeof(buf) - 1) : 0);
  if (text.find('.') != std::string::npos) {
    while (!text.empty() && text.back() == '0') text.pop_back();
    if (!text.empty() && text.back() == '.') text.pop_back();
  }
  if (text == "-0") text = "0";
  const int64_t expire = s->exists() ? s->live[0].expire_at_ms : 0;
  resp::AppendBulk(reply, text);
  Put(s, std::move(text), expire, now);
}

void ApplyAppend(const StringOp& op, int64_t now, const ParseLimits& limits, KeyState* s,
                 std::string* reply) {
  if (!Single(*s, reply)) return;
  const size_t size = s->exists() ? s->live[0].value.size() : 0;
  if (static_cast<int64_t>(size + op.values[0].size()) > limits.max_value_bytes) {
    return AppendStringTooLong(reply);
  }
  if (!s->exists()) Put(s, std::string(), 0, now);
  std::string& v = s->live[0].value;  // in place, as SETRANGE
  v += op.values[0];
  s->changed = true;
  resp::AppendInteger(reply, static_cast<int64_t>(v.size()));
}

void ApplyGetEx(const StringOp& op, int64_t now, KeyState* s, std::string* reply) {
  if (!s->exists() || op.expiry.kind == Expiry::Kind::kNone) return AppendGetReply(*s, reply);
  if (!Single(*s, reply)) return;
  KeyState::Version& v = s->live[0];
  resp::AppendBulk(reply, v.value);
  if (op.expiry.kind == Expiry::Kind::kPersist) {
    if (v.expire_at_ms != 0) {
      v.expire_at_ms = 0;
      s->changed = true;
    }
    return;
  }
  Put(s, v.value, op.expiry.At(now), now);
}

void ApplyExpire(const StringOp& op, int64_t now, KeyState* s, std::string* reply) {
  if (!s->exists()) return resp::AppendInteger(reply, 0);
  if (!Single(*s, reply)) return;
  KeyState::Version& v = s->live[0];
  const int64_t at = op.expiry.At(now);
  const int64_t cur = v.expire_at_ms;  // 0: none, which counts as infinite for GT/LT
  const bool refused = (op.cond == Cond::kNx && cur != 0) || (op.cond == Cond::kXx && cur == 0) ||
                       (op.gt && (cur == 0 || at <= cur)) || (op.lt && cur != 0 && at >= cur);
  if (refused) return resp::AppendInteger(reply, 0);
  if (at <= now) {
    Delete(s);
  } else {
    v.expire_at_ms = at;
    s->changed = true;
  }
  resp::AppendInteger(reply, 1);
}

void ApplyPersist(KeyState* s, std::string* reply) {
  if (!s->exists()) return resp::AppendInteger(reply, 0);
  if (!Single(*s, reply)) return;
  if (s->live[0].expire_at_ms == 0) return resp::AppendInteger(reply, 0);
  s->live[0].expire_at_ms = 0;
  s->changed = true;
  resp::AppendInteger(reply, 1);
}

}  // namespace

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A whole-string finite long double, as Redis's string2ld (no spaces, no NaN).
bool ParseFloat(std::string_view s, long double* out) {
  if (s.empty() || s.size() > 5000 || std::isspace(static_cast<unsigned char>(s[0]))) return false;
  std::string text(s);
  char* end = nullptr;
  errno = 0;
  *out = std::strtold(text.c_str(), &end);
  return errno != ERANGE && end == text.c_str() + text.size() && !std::isnan(*out);
}

bool ParseInt64(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

KeyState StateOf(const core::Object& obj, int64_t now_ms) {
  KeyState s;
  if (core::HasCounter(obj)) {
    // A counter's siblings are one value (core/counter.h).
    if (std::optional<core::CounterView> v = core::ReadCounter(obj, now_ms)) {
      if (v->exists) s.live.push_back({std::to_string(v->value), v->expire_at_ms});
      return s;
    }
  }
  for (const core::Sibling* sib : core::LiveSiblings(obj, now_ms)) {
    s.live.push_back({sib->value, sib->expire_at_ms});
  }
  return s;
}

bool StringOp::ReadModifyWrite() const {
  switch (kind) {
    case Kind::kSet: return set_reply == SetReply::kOld;
    case Kind::kGetEx: return expiry.kind != Expiry::Kind::kNone;
    case Kind::kSetRange:
    case Kind::kAppend:
    case Kind::kIncrByFloat:
    case Kind::kGetDel:
    case Kind::kExpire:
    case Kind::kPersist: return true;
    default: return false;
  }
}

bool StringOp::Writes() const {
  return ReadModifyWrite() || kind == Kind::kSet || kind == Kind::kMSet || kind == Kind::kDel;
}

bool IsStringOpCommand(const std::string& name) {
  static const char* const kNames[] = {
      "get", "strlen", "set", "setnx", "setex", "psetex", "getset", "getex", "getrange",
      "setrange", "append", "incrbyfloat", "mset", "msetnx", "expire", "pexpire", "expireat", "pexpireat",
      "ping", "echo", "unwatch"};
  for (const char* n : kNames) {
    if (name == n) return true;
  }
  return KeyOnlyCommands().count(name) > 0;
}

bool ParseStringOp(const std::vector<std::string>& args, const ParseLimits& limits, StringOp* op,
                   ReplicationOptions* repl, std::string* err) {
  *op = StringOp();
  *repl = ReplicationOptions();
  op->name = Lower(args[0]);
  if (!ParseByName(op->name, args, limits, op, repl, err)) return false;
  if (op->kind == Kind::kSet && static_cast<int64_t>(op->values[0].size()) > limits.max_value_bytes) {
    return FailTooBig(op->values[0].size(), err);
  }
  return true;
}

void ApplyStringOp(const StringOp& op, int64_t now_ms, const ParseLimits& limits, KeyState* s,
                   std::string* reply) {
  switch (op.kind) {
    case Kind::kGet: return AppendGetReply(*s, reply);
    case Kind::kSet: return ApplySet(op, now_ms, s, reply);
    case Kind::kMSet: return ApplyMSet(op, now_ms, s, reply);
    case Kind::kDel: {
      int64_t n = 0;
      for (size_t i = 0; i < op.keys.size(); ++i) {
        if (s->exists()) {
          Delete(s);
          ++n;
        }
      }
      return resp::AppendInteger(reply, n);
    }
    case Kind::kExists:
      return resp::AppendInteger(reply, s->exists() ? static_cast<int64_t>(op.keys.size()) : 0);
    case Kind::kMGet:
      resp::AppendArrayHeader(reply, op.keys.size());
      for (size_t i = 0; i < op.keys.size() && reply->size() <= limits.max_reply_bytes; ++i) {
        AppendGetReply(*s, reply);
      }
      return;
    case Kind::kTtl:
    case Kind::kExpireTime: return ApplyTtl(op, now_ms, *s, reply);
    case Kind::kStrlen:
      if (!Single(*s, reply)) return;
      return resp::AppendInteger(reply, s->exists() ? static_cast<int64_t>(s->live[0].value.size()) : 0);
    case Kind::kGetRange: return ApplyGetRange(op, *s, reply);
    case Kind::kSetRange: return ApplySetRange(op, now_ms, s, reply);
    case Kind::kAppend: return ApplyAppend(op, now_ms, limits, s, reply);
    case Kind::kIncrByFloat: return ApplyIncrByFloat(op, now_ms, s, reply);
    case Kind::kGetDel:
      AppendGetReply(*s, reply);
      if (s->exists()) Delete(s);
      return;
    case Kind::kGetEx: return ApplyGetEx(op, now_ms, s, reply);
    case Kind::kExpire: return ApplyExpire(op, now_ms, s, reply);
    case Kind::kPersist: return ApplyPersist(s, reply);
    case Kind::kPing:
      return op.values.empty() ? resp::AppendSimple(reply, "PONG") : resp::AppendBulk(reply, op.values[0]);
    case Kind::kEcho: return resp::AppendBulk(reply, op.values[0]);
    case Kind::kUnwatch: return resp::AppendSimple(reply, "OK");
  }
}

core::WriteSpec Writeback(const KeyState& state, const core::VClock& base_clock, int64_t now_ms) {
  core::WriteSpec spec;
  if (state.live.empty()) {
    spec.version = core::NewVersion{true, {}, 0, now_ms};
  } else {
    spec.version = core::NewVersion{false, state.live[0].value, state.live[0].expire_at_ms, now_ms};
  }
  spec.has_context = true;
  spec.context = base_clock;
  return spec;
}

core::WriteSpec SetSpec(const StringOp& op, const ReplicationOptions& repl, int64_t now_ms) {
  core::WriteSpec spec;
  using WCond = core::WriteSpec::Cond;
  spec.cond = op.cond == Cond::kNx ? WCond::kNx : op.cond == Cond::kXx ? WCond::kXx : WCond::kNone;
  spec.keep_ttl = op.expiry.kind == Expiry::Kind::kKeep;
  spec.version.value = op.values.back();
  spec.version.expire_at_ms = op.expiry.sets_time() ? op.expiry.At(now_ms) : 0;
  spec.version.written_at_ms = now_ms;
  spec.has_context = repl.has_context;
  spec.context = repl.context;
  return spec;
}

}  // namespace itsuka::server
