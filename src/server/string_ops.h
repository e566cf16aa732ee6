// The commands on one string key as a pure model: their arguments parsed once into a
// StringOp, and each op's effect on the key's state with the reply Redis would give.
//
// The shell runs three kinds of commands on it (server/txn_commands.cc):
//  - reads (GET-like: STRLEN, GETRANGE, TTL, EXPIRETIME, ...) apply the op to the state
//    an ordinary or CONSISTENT read returned;
//  - blind writes (SET without GET, SETNX, SETEX, PSETEX, MSET, DEL) become one
//    replicated write each (SetSpec), as SET always did;
//  - read-modify-writes (APPEND, SETRANGE, GETSET, GETDEL, GETEX with options, SET ...
//    GET, EXPIRE and friends, PERSIST, INCRBYFLOAT) and the commands of a MULTI/EXEC transaction on
//    one key apply, in order, to the state a CONSISTENT read agreed on; a changed state
//    is written back as one version by a CONSISTENT compare-and-set (Writeback).
//
// A state holds the key's live versions: none, one, or several (siblings). Ops that
// need the single value (APPEND, STRLEN, EXPIRE, ...) answer -SIBLINGS on several and
// change nothing; ops that overwrite (SET, DEL, GETSET, ...) resolve them.
//
// Pure values and functions: time comes in as an argument. Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/messages.h"
#include "core/object.h"

namespace itsuka::server {

// Helpers shared by the command files: ASCII lower case, and a whole-string int64.
std::string AsciiLower(std::string_view s);
bool ParseInt64(std::string_view s, int64_t* out);
// A whole-string finite long double (Redis's string2ld: no leading space, no NaN).
bool ParseFloat(std::string_view s, long double* out);

// A key's live versions at one instant.
struct KeyState {
  struct Version {
    std::string value;
    int64_t expire_at_ms = 0;  // 0: never
  };
  std::vector<Version> live;  // empty: the key does not exist
  bool changed = false;       // an op wrote: the state must be written back
  bool exists() const { return !live.empty(); }
};

// The state a reader at `now_ms` sees in `obj` (its live siblings, in dot order).
KeyState StateOf(const core::Object& obj, int64_t now_ms);

// Options of a command that are about replication, not about the model.
struct ReplicationOptions {
  std::vector<std::pair<std::string, std::string>> quorums;  // "R"/"PR"/"W"/"PW", value
  bool consistent = false;
  bool has_context = false;  // SET ... CTX token
  core::VClock context;
};

// An expiry as given: a duration or an epoch time (ms), PERSIST or KEEPTTL.
struct Expiry {
  enum class Kind { kNone, kRelative, kAbsolute, kPersist, kKeep };
  Kind kind = Kind::kNone;
  int64_t ms = 0;
  bool sets_time() const { return kind == Kind::kRelative || kind == Kind::kAbsolute; }
  int64_t At(int64_t now_ms) const { return kind == Kind::kRelative ? now_ms + ms : ms; }
};

struct StringOp {
  enum class Kind {
    kGet, kSet, kDel, kExists, kMGet, kMSet, kTtl, kExpireTime, kStrlen, kGetRange,
    kSetRange, kAppend, kGetDel, kGetEx, kExpire, kPersist, kPing, kEcho, kUnwatch,
    kIncrByFloat,
  };
  // How kSet answers: SET (OK, or nil when NX/XX did not hold), SETNX / MSETNX (1 or
  // 0), SET ... GET and GETSET (the old value).
  enum class SetReply { kOk, kInteger, kOld };
  // kSet's, kMSet's and kExpire's condition.
  enum class Cond { kNone, kNx, kXx };

  Kind kind = Kind::kGet;
  std::string name;                 // the command, lower case (for messages)
  std::vector<std::string> keys;    // every key argument in order, repeats kept
  std::vector<std::string> values;  // kSet/kMSet/kAppend/kSetRange: the values; kPing/kEcho
  bool millis = false;              // PTTL, PEXPIRETIME
  int64_t start = 0, end = 0;       // GETRANGE; SETRANGE's offset in start
  Cond cond = Cond::kNone;
  bool gt = false, lt = false;      // kExpire: only a later (GT) / earlier (LT) expiry
  SetReply set_reply = SetReply::kOk;
  Expiry expiry;                    // kSet, kGetEx, kExpire

  // The op reads the key and writes it from what it read: it runs CONSISTENT.
  bool ReadModifyWrite() const;
  // The op writes (blind or not).
  bool Writes() const;
};

struct ParseLimits {
  int64_t max_value_bytes = 32 << 20;  // limits.max_object_bytes
  // ApplyStringOp stops appending an MGET's values once the reply is past this (the
  // caller then refuses the reply): `MGET k k k ...` of one large value inside MULTI
  // would otherwise build a reply of gigabytes before any check saw it.
  size_t max_reply_bytes = SIZE_MAX;  // limits.max_output_buffer_bytes
};

// Parses a command the model knows (`args[0]` any case; arity already checked by the
// command table). False, with the Redis-style error line appended to *err, if the
// arguments are bad, or if the command is not one of the model's. The replication
// options it allows (R/PR/CONSISTENT on GET-like reads; W/PW/CTX/CONSISTENT on SET,
// SETNX, SETEX, PSETEX) go to *repl; a caller that does not take them checks *repl.
bool ParseStringOp(const std::vector<std::string>& args, const ParseLimits& limits,
                   StringOp* op, ReplicationOptions* repl, std::string* err);
// True if ParseStringOp knows `name` (lower case).
bool IsStringOpCommand(const std::string& name);

// Applies `op` to `state` at `now_ms` and appends its reply to *reply.
// REQUIRES: every key of op is the key `state` describes.
void ApplyStringOp(const StringOp& op, int64_t now_ms, const ParseLimits& limits, KeyState* state,
                   std::string* reply);

// The write a changed state becomes: one version (a value with its expiry, or a
// tombstone) superseding exactly `base_clock` (compare-and-set: applied only if the key
// still holds what that clock saw), written at `now_ms`.
// REQUIRES: state.changed and state.live.size() <= 1 (ApplyStringOp keeps it so).
core::WriteSpec Writeback(const KeyState& state, const core::VClock& base_clock, int64_t now_ms);

// The replicated write of a blind kSet (no GET) at `now_ms`, with SET's conditions,
// expiry, KEEPTTL and CTX.
core::WriteSpec SetSpec(const StringOp& op, const ReplicationOptions& repl, int64_t now_ms);

}  // namespace itsuka::server
