// The one-key string model (server/string_ops.h): arguments, Redis's replies and
// effects per command, siblings, and that a changed state written back by
// compare-and-set reads back as that state.
#include "server/string_ops.h"

#include <gtest/gtest.h>

#include <random>

#include "core/paxos.h"

namespace itsuka::server {
namespace {

constexpr int64_t kNow = 1'000'000'000;

struct Run {
  bool ok = false;
  std::string reply;  // the reply, or the parse error
};

// Parses `args` and applies the op to *s at kNow (or `now`).
Run Apply(KeyState* s, std::vector<std::string> args, int64_t now = kNow,
          ParseLimits limits = {}) {
  StringOp op;
  ReplicationOptions repl;
  Run r;
  r.ok = ParseStringOp(args, limits, &op, &repl, &r.reply);
  if (r.ok) ApplyStringOp(op, now, limits, s, &r.reply);
  return r;
}

std::string ParseError(std::vector<std::string> args, ParseLimits limits = {}) {
  StringOp op;
  ReplicationOptions repl;
  std::string err;
  EXPECT_FALSE(ParseStringOp(args, limits, &op, &repl, &err)) << args[0];
  return err;
}

KeyState Value(std::string v, int64_t expire = 0) {
  KeyState s;
  s.live.push_back({std::move(v), expire});
  return s;
}

KeyState Siblings() {
  KeyState s;
  s.live.push_back({"a", 0});
  s.live.push_back({"b", 0});
  return s;
}

const char* kOk = "+OK\r\n";
const char* kNil = "$-1\r\n";
std::string Int(int64_t v) { return ":" + std::to_string(v) + "\r\n"; }
std::string Bulk(const std::string& v) { return "$" + std::to_string(v.size()) + "\r\n" + v + "\r\n"; }

TEST(StringOps, SetAndItsVariants) {
  KeyState s;
  EXPECT_EQ(Apply(&s, {"SET", "k", "v", "XX"}).reply, kNil);
  EXPECT_FALSE(s.changed);
  EXPECT_EQ(Apply(&s, {"set", "k", "v", "NX", "EX", "10"}).reply, kOk);
  ASSERT_TRUE(s.exists());
  EXPECT_EQ(s.live[0].expire_at_ms, kNow + 10'000);
  EXPECT_TRUE(s.changed);
  EXPECT_EQ(Apply(&s, {"SET", "k", "w", "KEEPTTL"}).reply, kOk);
  EXPECT_EQ(s.live[0].expire_at_ms, kNow + 10'000);
  EXPECT_EQ(Apply(&s, {"SET", "k", "x", "GET"}).reply, Bulk("w"));
  EXPECT_EQ(s.live[0].expire_at_ms, 0);  // SET without KEEPTTL drops the expiry
  EXPECT_EQ(Apply(&s, {"SET", "k", "y", "NX", "GET"}).reply, Bulk("x"));  // old value, not set
  EXPECT_EQ(s.live[0].value, "x");
  EXPECT_EQ(Apply(&s, {"SETNX", "k", "z"}).reply, Int(0));
  EXPECT_EQ(Apply(&s, {"GETSET", "k", "g"}).reply, Bulk("x"));
  EXPECT_EQ(Apply(&s, {"SETEX", "k", "5", "e"}).reply, kOk);
  EXPECT_EQ(s.live[0].expire_at_ms, kNow + 5000);
  EXPECT_EQ(Apply(&s, {"PSETEX", "k", "5", "p"}).reply, kOk);
  EXPECT_EQ(s.live[0].expire_at_ms, kNow + 5);
  // An absolute expiry in the past leaves the key deleted.
  EXPECT_EQ(Apply(&s, {"SET", "k", "old", "PXAT", std::to_string(kNow - 1)}).reply, kOk);
  EXPECT_FALSE(s.exists());
  KeyState none;
  EXPECT_EQ(Apply(&none, {"SETNX", "k", "z"}).reply, Int(1));
  KeyState fresh;
  EXPECT_EQ(Apply(&fresh, {"GETSET", "k", "g"}).reply, kNil);
}

TEST(StringOps, ArgumentErrorsAsRedis) {
  EXPECT_EQ(ParseError({"SET", "k", "v", "EX", "0"}), "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(ParseError({"SET", "k", "v", "EX", "x"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(ParseError({"SET", "k", "v", "NX", "XX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ParseError({"SET", "k", "v", "EX", "1", "KEEPTTL"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ParseError({"SET", "k", "v", "GET", "GET"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ParseError({"SET", "k", "v", "CTX", "!!"}),
            "-ERR invalid CTX token (use the one VGET returned)\r\n");
  EXPECT_EQ(ParseError({"SETEX", "k", "-1", "v"}), "-ERR invalid expire time in 'setex' command\r\n");
  EXPECT_EQ(ParseError({"PSETEX", "k", "0", "v"}), "-ERR invalid expire time in 'psetex' command\r\n");
  EXPECT_EQ(ParseError({"GETSET", "k", "v", "W", "1"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ParseError({"GETEX", "k", "EX", "0"}), "-ERR invalid expire time in 'getex' command\r\n");
  EXPECT_EQ(ParseError({"GETEX", "k", "EX", "1", "PERSIST"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ParseError({"GETEX", "k", "EX", "1", "R", "2"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ParseError({"GETRANGE", "k", "0", "x"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(ParseError({"SETRANGE", "k", "-1", "x"}), "-ERR offset is out of range\r\n");
  EXPECT_EQ(ParseError({"SETRANGE", "k", "2000", "x"}, ParseLimits{2000}),
            "-ERR string exceeds maximum allowed size (limits.max_object_bytes)\r\n");
  EXPECT_EQ(ParseError({"MSETNX", "a", "1", "b"}), "-ERR wrong number of arguments for 'msetnx' command\r\n");
  EXPECT_EQ(ParseError({"EXPIRE", "k", "1.5"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(ParseError({"EXPIRE", "k", "1", "NX", "GT"}),
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
  EXPECT_EQ(ParseError({"PEXPIRE", "k", "1", "GT", "LT"}),
            "-ERR GT and LT options at the same time are not compatible\r\n");
  EXPECT_EQ(ParseError({"EXPIRE", "k", "1", "SOON"}), "-ERR Unsupported option SOON\r\n");
  EXPECT_EQ(ParseError({"EXPIRE", "k", "9999999999999999"}),
            "-ERR invalid expire time in 'expire' command\r\n");
  EXPECT_EQ(ParseError({"STRLEN", "k", "W", "1"}), "-ERR syntax error\r\n");
  EXPECT_EQ(ParseError({"SET", "k", std::string(2000, 'x')}, ParseLimits{1024}),
            "-TOOBIG value of 2000 bytes is over limits.max_object_bytes\r\n");
  EXPECT_EQ(ParseError({"INCR", "k"}), "-ERR unknown command 'incr'\r\n");
  EXPECT_FALSE(IsStringOpCommand("incr"));
  EXPECT_TRUE(IsStringOpCommand("getdel"));
}

TEST(StringOps, ReplicationOptionsAreSeparated) {
  StringOp op;
  ReplicationOptions repl;
  std::string err;
  ASSERT_TRUE(ParseStringOp({"GETRANGE", "k", "0", "1", "R", "all", "CONSISTENT"}, {}, &op, &repl, &err));
  ASSERT_EQ(repl.quorums.size(), 1u);
  EXPECT_EQ(repl.quorums[0], std::make_pair(std::string("R"), std::string("all")));
  EXPECT_TRUE(repl.consistent);
  ASSERT_TRUE(ParseStringOp({"SETNX", "k", "v", "w", "2", "PW", "1"}, {}, &op, &repl, &err));
  EXPECT_EQ(repl.quorums.size(), 2u);
  EXPECT_FALSE(op.ReadModifyWrite());
  EXPECT_TRUE(op.Writes());
  ASSERT_TRUE(ParseStringOp({"SET", "k", "v", "GET"}, {}, &op, &repl, &err));
  EXPECT_TRUE(op.ReadModifyWrite());
  ASSERT_TRUE(ParseStringOp({"GETEX", "k"}, {}, &op, &repl, &err));
  EXPECT_FALSE(op.Writes());
  ASSERT_TRUE(ParseStringOp({"GETEX", "k", "PERSIST"}, {}, &op, &repl, &err));
  EXPECT_TRUE(op.ReadModifyWrite());
}

TEST(StringOps, AppendStrlenRanges) {
  KeyState s;
  EXPECT_EQ(Apply(&s, {"STRLEN", "k"}).reply, Int(0));
  EXPECT_EQ(Apply(&s, {"GETRANGE", "k", "0", "-1"}).reply, Bulk(""));
  EXPECT_EQ(Apply(&s, {"APPEND", "k", "Hello"}).reply, Int(5));
  EXPECT_EQ(Apply(&s, {"APPEND", "k", " World"}).reply, Int(11));
  EXPECT_EQ(Apply(&s, {"STRLEN", "k"}).reply, Int(11));
  // Redis's GETRANGE examples.
  EXPECT_EQ(Apply(&s, {"GETRANGE", "k", "0", "3"}).reply, Bulk("Hell"));
  EXPECT_EQ(Apply(&s, {"GETRANGE", "k", "-3", "-1"}).reply, Bulk("rld"));
  EXPECT_EQ(Apply(&s, {"GETRANGE", "k", "0", "-1"}).reply, Bulk("Hello World"));
  EXPECT_EQ(Apply(&s, {"GETRANGE", "k", "10", "100"}).reply, Bulk("d"));
  EXPECT_EQ(Apply(&s, {"GETRANGE", "k", "5", "3"}).reply, Bulk(""));
  EXPECT_EQ(Apply(&s, {"GETRANGE", "k", "-1", "-5"}).reply, Bulk(""));
  EXPECT_EQ(Apply(&s, {"GETRANGE", "k", "-100", "1"}).reply, Bulk("He"));
  EXPECT_EQ(Apply(&s, {"SETRANGE", "k", "6", "Redis"}).reply, Int(11));
  EXPECT_EQ(s.live[0].value, "Hello Redis");
  KeyState t;
  EXPECT_EQ(Apply(&t, {"SETRANGE", "k", "3", ""}).reply, Int(0));
  EXPECT_FALSE(t.exists());
  EXPECT_FALSE(t.changed);
  EXPECT_EQ(Apply(&t, {"SETRANGE", "k", "3", "ab"}).reply, Int(5));
  EXPECT_EQ(t.live[0].value, std::string("\0\0\0ab", 5));
  // APPEND and SETRANGE keep the expiry.
  KeyState e = Value("x", kNow + 100);
  EXPECT_EQ(Apply(&e, {"APPEND", "k", "y"}).reply, Int(2));
  EXPECT_EQ(Apply(&e, {"SETRANGE", "k", "0", "z"}).reply, Int(2));
  EXPECT_EQ(e.live[0].value, "zy");
  EXPECT_EQ(e.live[0].expire_at_ms, kNow + 100);
  KeyState big = Value(std::string(1000, 'x'));
  EXPECT_EQ(Apply(&big, {"APPEND", "k", std::string(100, 'y')}, kNow, ParseLimits{1050}).reply,
            "-ERR string exceeds maximum allowed size (limits.max_object_bytes)\r\n");
  EXPECT_FALSE(big.changed);
}

TEST(StringOps, SetRangeAndAppendOnAMissingKeyCreateIt) {
  KeyState s;
  EXPECT_EQ(Apply(&s, {"APPEND", "k", ""}).reply, Int(0));
  EXPECT_TRUE(s.exists());
  EXPECT_TRUE(s.changed);
  KeyState t;
  EXPECT_EQ(Apply(&t, {"SETRANGE", "k", "1", "a"}).reply, Int(2));
  EXPECT_EQ(t.live[0].value, std::string("\0a", 2));
  EXPECT_EQ(t.live[0].expire_at_ms, 0);
}

TEST(StringOps, MGetOfOneKeyStopsPastTheReplyBound) {
  KeyState s = Value(std::string(1000, 'x'));
  std::vector<std::string> args = {"MGET"};
  for (int i = 0; i < 100; ++i) args.push_back("k");
  ParseLimits limits;
  limits.max_reply_bytes = 5000;
  const std::string reply = Apply(&s, args, kNow, limits).reply;
  // Stopped at the first value past the bound (the caller refuses the reply).
  EXPECT_GT(reply.size(), 5000u);
  EXPECT_LT(reply.size(), 7000u);
  EXPECT_EQ(Apply(&s, args).reply.size(), 6u + 100 * (1000 + 9));
}

TEST(StringOps, GetDelGetEx) {
  KeyState s = Value("v", kNow + 5000);
  EXPECT_EQ(Apply(&s, {"GETEX", "k"}).reply, Bulk("v"));
  EXPECT_FALSE(s.changed);
  EXPECT_EQ(Apply(&s, {"GETEX", "k", "PX", "100"}).reply, Bulk("v"));
  EXPECT_EQ(s.live[0].expire_at_ms, kNow + 100);
  EXPECT_EQ(Apply(&s, {"GETEX", "k", "PERSIST"}).reply, Bulk("v"));
  EXPECT_EQ(s.live[0].expire_at_ms, 0);
  EXPECT_EQ(Apply(&s, {"GETEX", "k", "EXAT", "1"}).reply, Bulk("v"));  // in the past: deleted
  EXPECT_FALSE(s.exists());
  EXPECT_EQ(Apply(&s, {"GETEX", "k", "EX", "10"}).reply, kNil);
  KeyState d = Value("v");
  EXPECT_EQ(Apply(&d, {"GETDEL", "k"}).reply, Bulk("v"));
  EXPECT_FALSE(d.exists());
  EXPECT_TRUE(d.changed);
  EXPECT_EQ(Apply(&d, {"GETDEL", "k"}).reply, kNil);
}

TEST(StringOps, ExpiryCommands) {
  KeyState s = Value("v");
  EXPECT_EQ(Apply(&s, {"TTL", "k"}).reply, Int(-1));
  EXPECT_EQ(Apply(&s, {"EXPIRETIME", "k"}).reply, Int(-1));
  EXPECT_EQ(Apply(&s, {"PERSIST", "k"}).reply, Int(0));
  EXPECT_EQ(Apply(&s, {"EXPIRE", "k", "10", "XX"}).reply, Int(0));
  EXPECT_EQ(Apply(&s, {"EXPIRE", "k", "10", "GT"}).reply, Int(0));  // no expiry = infinite
  EXPECT_EQ(Apply(&s, {"EXPIRE", "k", "10", "LT"}).reply, Int(1));
  EXPECT_EQ(Apply(&s, {"PTTL", "k"}).reply, Int(10'000));
  EXPECT_EQ(Apply(&s, {"EXPIRE", "k", "20", "NX"}).reply, Int(0));
  EXPECT_EQ(Apply(&s, {"EXPIRE", "k", "5", "GT"}).reply, Int(0));
  EXPECT_EQ(Apply(&s, {"EXPIRE", "k", "20", "GT"}).reply, Int(1));
  EXPECT_EQ(Apply(&s, {"TTL", "k"}).reply, Int(20));
  EXPECT_EQ(Apply(&s, {"EXPIRE", "k", "30", "XX", "LT"}).reply, Int(0));
  EXPECT_EQ(Apply(&s, {"PEXPIREAT", "k", std::to_string(kNow + 1500)}).reply, Int(1));
  EXPECT_EQ(Apply(&s, {"PEXPIRETIME", "k"}).reply, Int(kNow + 1500));
  EXPECT_EQ(Apply(&s, {"EXPIRETIME", "k"}).reply, Int((kNow + 1500 + 500) / 1000));
  EXPECT_EQ(Apply(&s, {"TTL", "k"}).reply, Int(2));  // 1.5 s rounds to 2, as Redis
  EXPECT_EQ(Apply(&s, {"EXPIREAT", "k", std::to_string(kNow / 1000 + 100)}).reply, Int(1));
  EXPECT_EQ(s.live[0].expire_at_ms, kNow + 100'000);
  EXPECT_EQ(Apply(&s, {"PERSIST", "k"}).reply, Int(1));
  EXPECT_EQ(s.live[0].expire_at_ms, 0);
  // An expiry not in the future deletes the key (and answers 1), as Redis.
  EXPECT_EQ(Apply(&s, {"EXPIRE", "k", "-1"}).reply, Int(1));
  EXPECT_FALSE(s.exists());
  EXPECT_EQ(Apply(&s, {"EXPIRE", "k", "10"}).reply, Int(0));
  EXPECT_EQ(Apply(&s, {"TTL", "k"}).reply, Int(-2));
  EXPECT_EQ(Apply(&s, {"PEXPIRETIME", "k"}).reply, Int(-2));
}

TEST(StringOps, KeyListCommandsOnOneKey) {
  KeyState s = Value("v");
  EXPECT_EQ(Apply(&s, {"EXISTS", "k", "k"}).reply, Int(2));
  EXPECT_EQ(Apply(&s, {"MGET", "k", "k"}).reply, "*2\r\n" + Bulk("v") + Bulk("v"));
  EXPECT_EQ(Apply(&s, {"MSET", "k", "1", "k", "2"}).reply, kOk);
  EXPECT_EQ(s.live[0].value, "2");
  EXPECT_EQ(Apply(&s, {"MSETNX", "k", "3"}).reply, Int(0));
  EXPECT_EQ(Apply(&s, {"DEL", "k", "k"}).reply, Int(1));
  EXPECT_EQ(Apply(&s, {"MSETNX", "k", "3", "k", "4"}).reply, Int(1));
  EXPECT_EQ(s.live[0].value, "4");
  KeyState none;
  EXPECT_EQ(Apply(&none, {"DEL", "k"}).reply, Int(0));
  EXPECT_FALSE(none.changed);
  EXPECT_EQ(Apply(&none, {"PING"}).reply, "+PONG\r\n");
  EXPECT_EQ(Apply(&none, {"PING", "x"}).reply, Bulk("x"));
  EXPECT_EQ(Apply(&none, {"ECHO", "e"}).reply, Bulk("e"));
}

TEST(StringOps, SiblingsNeedResolvingOrAreOverwritten) {
  const std::string sib_error =
      "-SIBLINGS the key has 2 concurrent versions; read them with VGET and resolve them with "
      "SET ... CTX\r\n";
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"APPEND", "k", "x"}, {"STRLEN", "k"}, {"GETRANGE", "k", "0", "1"},
           {"SETRANGE", "k", "0", "x"}, {"EXPIRE", "k", "10"}, {"PERSIST", "k"},
           {"GETEX", "k", "EX", "10"}}) {
    KeyState s = Siblings();
    EXPECT_EQ(Apply(&s, args).reply, sib_error) << args[0];
    EXPECT_FALSE(s.changed) << args[0];
  }
  const std::string both = "*2\r\n" + Bulk("a") + Bulk("b");
  KeyState g = Siblings();
  EXPECT_EQ(Apply(&g, {"GET", "k"}).reply, both);
  EXPECT_EQ(Apply(&g, {"TTL", "k"}).reply, Int(-1));
  EXPECT_EQ(Apply(&g, {"GETSET", "k", "c"}).reply, both);  // resolves them
  ASSERT_EQ(g.live.size(), 1u);
  KeyState d = Siblings();
  EXPECT_EQ(Apply(&d, {"GETDEL", "k"}).reply, both);
  EXPECT_FALSE(d.exists());
}

TEST(StringOps, StateOfSeesOnlyLiveVersions) {
  core::Object obj;
  obj.clock = core::VClock({{"a", 3}});
  obj.siblings.push_back({{"a", 1}, false, "expired", kNow - 1, 0});
  obj.siblings.push_back({{"a", 2}, true, "", 0, 0});
  obj.siblings.push_back({{"a", 3}, false, "v", kNow + 10, 0});
  KeyState s = StateOf(obj, kNow);
  ASSERT_EQ(s.live.size(), 1u);
  EXPECT_EQ(s.live[0].value, "v");
  EXPECT_EQ(s.live[0].expire_at_ms, kNow + 10);
}

// A changed state, written back as a strong write over the object it came from (what
// the CONSISTENT compare-and-set applies), reads back as that state: random programs
// over random starting objects (absent, one value, siblings, expired).
TEST(StringOps, WritebackReadsBackAsTheState) {
  std::mt19937 rng(13);
  const std::vector<std::vector<std::string>> programs[] = {
      {{"SET", "k", "a"}, {"APPEND", "k", "b"}},
      {{"DEL", "k"}},
      {{"SET", "k", "x", "EX", "100"}, {"SETRANGE", "k", "3", "yz"}},
      {{"GETDEL", "k"}, {"SETNX", "k", "n"}},
      {{"SET", "k", "v", "PX", "5"}, {"EXPIRE", "k", "50"}, {"PERSIST", "k"}},
      {{"MSET", "k", "1", "k", "2"}, {"GETEX", "k", "PX", "77"}},
      {{"SET", "k", "v"}, {"EXPIRE", "k", "0"}},
  };
  for (int round = 0; round < 200; ++round) {
    core::Object base;
    const int versions = static_cast<int>(rng() % 3);
    for (int i = 1; i <= versions; ++i) {
      const bool expired = rng() % 4 == 0;
      base.siblings.push_back({{"n" + std::to_string(i), 1}, false, "s" + std::to_string(i),
                               expired ? kNow - 1 : 0, 0});
      base.clock.Raise("n" + std::to_string(i), 1);
    }
    const auto& program = programs[rng() % std::size(programs)];
    KeyState s = StateOf(base, kNow);
    for (const auto& args : program) Apply(&s, args);
    if (!s.changed) continue;
    ASSERT_LE(s.live.size(), 1u);
    core::WriteSpec spec = Writeback(s, base.clock, kNow);
    ASSERT_TRUE(spec.has_context);
    Result<core::Object> next =
        core::ApplyWrite(base, spec.context, core::kStrongActor, spec.version, {});
    ASSERT_TRUE(next.ok());
    KeyState back = StateOf(*next, kNow);
    ASSERT_EQ(back.live.size(), s.live.size()) << round;
    if (!s.live.empty()) {
      EXPECT_EQ(back.live[0].value, s.live[0].value);
      EXPECT_EQ(back.live[0].expire_at_ms, s.live[0].expire_at_ms);
    }
  }
}

TEST(StringOps, SetSpecCarriesSetsOptions) {
  StringOp op;
  ReplicationOptions repl;
  std::string err;
  ASSERT_TRUE(ParseStringOp({"SET", "k", "v", "XX", "EX", "3"}, {}, &op, &repl, &err));
  core::WriteSpec spec = SetSpec(op, repl, kNow);
  EXPECT_EQ(spec.cond, core::WriteSpec::Cond::kXx);
  EXPECT_EQ(spec.version.value, "v");
  EXPECT_EQ(spec.version.expire_at_ms, kNow + 3000);
  EXPECT_FALSE(spec.has_context);
  ASSERT_TRUE(ParseStringOp({"SET", "k", "v", "KEEPTTL"}, {}, &op, &repl, &err));
  EXPECT_TRUE(SetSpec(op, repl, kNow).keep_ttl);
  ASSERT_TRUE(ParseStringOp({"MSETNX", "k", "1", "k", "2"}, {}, &op, &repl, &err));
  spec = SetSpec(op, repl, kNow);
  EXPECT_EQ(spec.cond, core::WriteSpec::Cond::kNx);
  EXPECT_EQ(spec.version.value, "2");
}

}  // namespace
}  // namespace itsuka::server
