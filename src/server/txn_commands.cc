// Transactions (MULTI, EXEC, DISCARD, WATCH, UNWATCH) and the string commands of the
// one-key model (server/string_ops.h) in the command table (CommandExecutor,
// server/commands.h).
//
// A one-key program -- an EXEC's queued commands, or one read-modify-write command such
// as APPEND -- runs as: a CONSISTENT read of the key; the commands applied to the
// agreed state in order (string_ops.h); if that changed the state, one CONSISTENT
// write of the result with a compare-and-set against the clock the read returned
// (core/paxos.h: applied only if nothing was written to the key since). A lost
// compare-and-set returns the key's agreed object, and the program is applied again to
// it (kMaxCasAttempts in all), unless a WATCH is involved: then the key changed after
// WATCH and EXEC answers nil. So a program is applied whole or not at all; a write
// answered -TIMEOUT may have been applied whole (outcome unknown), never in part.
// docs/DESIGN.md section 5.8 and the README's "Transactions" say what this promises.
#include <algorithm>
#include <cctype>
#include <memory>
#include <set>
#include <string_view>
#include <unordered_set>

#include "server/commands.h"
#include "server/string_ops.h"
#include "wire/resp.h"

namespace itsuka::server {
namespace {

namespace resp = wire::resp;

// Compare-and-set rounds a program tries before it answers -TRYAGAIN.
constexpr int kMaxCasAttempts = 4;
// Most keys one connection may WATCH, and most commands one transaction may queue
// (its bytes are bounded by limits.max_query_buffer_bytes).
constexpr size_t kMaxWatchedKeys = 1024;
constexpr size_t kMaxQueuedCommands = 4096;

const char* const kExecAbortQueued = "EXECABORT Transaction discarded because of previous errors.";

// Commands that act on the transaction itself: never queued.
bool ControlsMulti(const std::string& name) {
  return name == "multi" || name == "exec" || name == "discard" || name == "watch" ||
         name == "quit";
}

// A key for an error message: bounded, and quoted.
std::string Quoted(const std::string& key) {
  return "'" + key.substr(0, 64) + (key.size() > 64 ? "...'" : "'");
}

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

void AppendNullArray(std::string* out) { out->append("*-1\r\n"); }

// What queueing and running a command takes in memory (its arguments and their slots).
size_t ArgsBytes(const std::vector<std::string>& args) {
  size_t n = sizeof(args) + args.size() * sizeof(std::string);
  for (const std::string& a : args) n += a.size();
  return n;
}

// Raises Session::barriers while a command the connection's later commands wait for
// is in flight: owned by that command's reply (its render), so it ends with the reply
// whichever way that ends (answered, or replaced by an error, or the client closed).
class Barrier {
 public:
  explicit Barrier(Session& s) : s_(s) { ++s_.barriers; }
  ~Barrier() { --s_.barriers; }
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

 private:
  Session& s_;
};

}  // namespace

// One key's commands to run atomically; shared by the stages of one reply.
struct CommandExecutor::KeyProgram {
  explicit KeyProgram(Session& s) : barrier(s) {}
  Barrier barrier;
  std::string key;
  std::vector<StringOp> ops;
  bool exec = false;  // EXEC's array of replies (else the one op's reply)
  bool watched = false;
  Session::Watch watch;  // when `watched`: what WATCH saw of the key
  int attempts = 0;
  std::string replies;  // the replies of the attempt being written
  Dispatcher* dispatch = nullptr;
};

bool CommandExecutor::WaitsForEarlierReplies(const Session& session,
                                             const std::vector<std::string>& args) const {
  // After a WATCH nothing runs before its read answered (the version it records is from
  // before the connection's next commands: a SET pipelined after it is a change), and
  // after EXEC or a read-modify-write nothing runs before it answered.
  if (session.barriers > 0) return true;
  return session.in_multi && !args.empty() && args[0].size() == 4 && AsciiLower(args[0]) == "exec";
}

// ---- Queueing ------------------------------------------------------------------------

bool CommandExecutor::QueuesInMulti(const Session& session, const std::string& name) const {
  return session.in_multi && !ControlsMulti(name);
}

void CommandExecutor::QueueInMulti(Session& session, std::vector<std::string>& args,
                                   std::string* out) {
  const std::string name = AsciiLower(args[0]);
  if (!IsStringOpCommand(name)) {
    return resp::AppendError(out, "ERR '" + name.substr(0, 64) +
                                      "' cannot run inside MULTI: a transaction here runs the "
                                      "string commands of one key (README, Transactions)");
  }
  StringOp op;
  ReplicationOptions repl;
  if (!ParseStringOp(args, ParseLimits{config_.max_object_bytes}, &op, &repl, out)) return;
  if (!repl.quorums.empty()) {
    return resp::AppendError(out, "ERR " + repl.quorums[0].first +
                                      " does not apply inside MULTI: a transaction runs "
                                      "CONSISTENT");
  }
  if (repl.has_context) {
    return resp::AppendError(out, "ERR CTX does not apply inside MULTI (WATCH the key instead)");
  }
  const size_t bytes = ArgsBytes(args);
  if (session.multi_queue.size() >= kMaxQueuedCommands ||
      session.multi_bytes + bytes > static_cast<size_t>(config_.max_query_buffer_bytes)) {
    return resp::AppendError(out, "ERR transaction too large (at most " +
                                      std::to_string(kMaxQueuedCommands) +
                                      " commands and limits.max_query_buffer_bytes)");
  }
  session.multi_bytes += bytes;
  session.multi_queue.push_back(std::move(args));
  resp::AppendSimple(out, "QUEUED");
}

void CommandExecutor::Multi(Session& session, std::vector<std::string>&, std::string* out) {
  if (session.in_multi) return resp::AppendError(out, "ERR MULTI calls can not be nested");
  session.in_multi = true;
  resp::AppendSimple(out, "OK");
}

void CommandExecutor::Discard(Session& session, std::vector<std::string>&, std::string* out) {
  if (!session.in_multi) return resp::AppendError(out, "ERR DISCARD without MULTI");
  session.EndMulti();
  ClearWatches(session);
  resp::AppendSimple(out, "OK");
}

void CommandExecutor::ClearWatches(Session& session) {
  session.watched.clear();
  session.watch_bytes = 0;
  ++session.watch_epoch;
}

// ---- WATCH ---------------------------------------------------------------------------

namespace {
void TooManyWatches(std::string* out) {
  resp::AppendError(out, "ERR too many WATCHed keys (at most " +
                             std::to_string(kMaxWatchedKeys) +
                             " per connection, and limits.max_query_buffer_bytes)");
}
}  // namespace

void CommandExecutor::WatchCmd(Session& session, std::vector<std::string>& args,
                               std::string* out) {
  if (session.in_multi) return resp::AppendError(out, "ERR WATCH inside MULTI is not allowed");
  // The cap is checked on the argument count first: deduplicating a huge argument list
  // on the loop thread would stall the node before the cap could refuse it.
  if (args.size() - 1 > kMaxWatchedKeys) return TooManyWatches(out);
  std::vector<std::string> fresh;
  std::unordered_set<std::string_view> seen;
  for (size_t i = 1; i < args.size(); ++i) {
    if (session.watched.count(args[i]) == 0 && seen.insert(args[i]).second) {
      fresh.push_back(args[i]);
    }
  }
  if (fresh.empty()) return resp::AppendSimple(out, "OK");
  size_t bytes = 0;
  for (const std::string& key : fresh) bytes += ArgsBytes({key}) + sizeof(Session::Watch);
  if (session.watched.size() + fresh.size() > kMaxWatchedKeys ||
      session.watch_bytes + bytes > static_cast<size_t>(config_.max_query_buffer_bytes)) {
    return TooManyWatches(out);
  }
  // A key watched already keeps the version of its first WATCH, as in Redis.
  for (const std::string& key : fresh) session.watched[key] = Session::Watch{};
  session.watch_bytes += bytes;
  Session* s = &session;  // the client owns both the session and this reply
  const uint64_t epoch = session.watch_epoch;
  auto barrier = std::make_shared<Barrier>(session);
  Await(fresh.size(), [this, s, epoch, fresh, barrier](PendingReply& r) {
    const core::ClientResult* failed = nullptr;
    for (size_t i = 0; i < fresh.size(); ++i) {
      const core::ClientResult& res = r.results[i];
      if (!res.status.ok()) {
        failed = failed ? failed : &res;
        continue;  // stays unknown: EXEC will answer nil
      }
      auto it = s->watched.find(fresh[i]);
      if (s->watch_epoch != epoch || it == s->watched.end()) continue;  // UNWATCHed meanwhile
      it->second.known = true;
      it->second.live = !core::LiveSiblings(res.object, clock_.WallMs()).empty();
      it->second.clock = res.object.clock;
    }
    if (failed != nullptr) return AppendStatusError(failed->status, &r.data);
    resp::AppendSimple(&r.data, "OK");
  });
  for (size_t i = 0; i < fresh.size(); ++i) dispatch_->Consistent(*reply_, i, fresh[i], true, {});
}

void CommandExecutor::Unwatch(Session& session, std::vector<std::string>&, std::string* out) {
  ClearWatches(session);
  resp::AppendSimple(out, "OK");
}

// ---- EXEC ----------------------------------------------------------------------------

void CommandExecutor::Exec(Session& session, std::vector<std::string>&, std::string* out) {
  if (!session.in_multi) return resp::AppendError(out, "ERR EXEC without MULTI");
  std::vector<std::vector<std::string>> queue = std::move(session.multi_queue);
  const bool failed = session.multi_failed;
  std::map<std::string, Session::Watch> watched = std::move(session.watched);
  session.EndMulti();
  ClearWatches(session);
  if (failed) {
    ++stats_.txn_aborted;
    return resp::AppendError(out, kExecAbortQueued);
  }
  auto program = std::make_shared<KeyProgram>(session);
  program->exec = true;
  std::set<std::string> keys;
  for (const auto& [key, w] : watched) keys.insert(key);
  const ParseLimits limits{config_.max_object_bytes};
  bool sets_expiry = false;
  for (std::vector<std::string>& args : queue) {
    StringOp op;
    ReplicationOptions repl;
    std::string err;
    if (!ParseStringOp(args, limits, &op, &repl, &err)) {  // checked when queued
      ++stats_.txn_aborted;
      return resp::AppendError(out, kExecAbortQueued);
    }
    keys.insert(op.keys.begin(), op.keys.end());
    sets_expiry = sets_expiry || op.expiry.sets_time();
    program->ops.push_back(std::move(op));
  }
  if (keys.size() > 1) {
    ++stats_.txn_aborted;
    std::string names;
    int shown = 0;
    for (const std::string& k : keys) {
      if (shown++ == 3) break;
      names += (names.empty() ? "" : ", ") + Quoted(k);
    }
    return resp::AppendError(
        out, "EXECABORT Transaction discarded: it touches " + std::to_string(keys.size()) +
                 " keys (" + names + (keys.size() > 3 ? ", ..." : "") +
                 "; WATCHed keys count); itsuka runs a transaction atomically on one key only");
  }
  if (sets_expiry && ttl_guard_) {
    Status st = ttl_guard_();
    if (!st.ok()) {
      ++stats_.txn_aborted;
      return resp::AppendError(out, "EXECABORT Transaction discarded: " + st.message());
    }
  }
  if (keys.empty()) {  // only PING / ECHO / UNWATCH: nothing to read or write
    KeyState none;
    resp::AppendArrayHeader(out, program->ops.size());
    for (const StringOp& op : program->ops) {
      ApplyStringOp(op, clock_.WallMs(), limits, &none, out);
    }
    ++stats_.txn_committed;
    return;
  }
  program->key = *keys.begin();
  if (auto it = watched.find(program->key); it != watched.end()) {
    program->watched = true;
    program->watch = it->second;
    if (!program->watch.known) {  // its WATCH read failed: the version is not known
      ++stats_.txn_watch_failed;
      return AppendNullArray(out);
    }
  }
  RunProgram(std::move(program));
}

// ---- One-key programs ----------------------------------------------------------------

// Sets where a stage's requests and reply go while it runs outside Execute (a render).
class CommandExecutor::StageScope {
 public:
  StageScope(CommandExecutor& e, PendingReply& r, Dispatcher* d)
      : e_(e), reply_(e.reply_), dispatch_(e.dispatch_) {
    e_.reply_ = &r;
    e_.dispatch_ = d;
  }
  ~StageScope() {
    e_.reply_ = reply_;
    e_.dispatch_ = dispatch_;
  }

 private:
  CommandExecutor& e_;
  PendingReply* reply_;
  Dispatcher* dispatch_;
};

void CommandExecutor::RunProgram(std::shared_ptr<KeyProgram> p) {
  p->dispatch = dispatch_;
  const std::string key = p->key;
  Await(1, [this, p](PendingReply& r) {
    core::ClientResult res = std::move(r.results[0]);
    if (!res.status.ok()) return AppendStatusError(res.status, &r.data);
    ApplyProgram(p, r, res.object);
  });
  dispatch_->Consistent(*reply_, 0, key, true, {});
}

void CommandExecutor::ApplyProgram(std::shared_ptr<KeyProgram> p, PendingReply& r,
                                   const core::Object& base) {
  const int64_t now = clock_.WallMs();
  if (p->watched) {
    // Unchanged since WATCH: nothing in the key now that WATCH did not see (so the
    // compare-and-set against this read also holds for WATCH's version), and no
    // expiry passed in between.
    const bool live = !core::LiveSiblings(base, now).empty();
    if (!p->watch.clock.Descends(base.clock) || live != p->watch.live) {
      ++stats_.txn_watch_failed;
      return AppendNullArray(&r.data);
    }
  }
  KeyState state = StateOf(base, now);
  std::string replies;
  if (p->exec) resp::AppendArrayHeader(&replies, p->ops.size());
  const ParseLimits limits{config_.max_object_bytes};
  for (const StringOp& op : p->ops) {
    ApplyStringOp(op, now, limits, &state, &replies);
    // Bounded as every reply is (client.h): refused before anything is written.
    if (replies.size() > static_cast<size_t>(config_.max_output_buffer_bytes)) {
      return resp::AppendError(&r.data, "ERR reply would exceed limits.max_output_buffer_bytes (" +
                                            std::to_string(config_.max_output_buffer_bytes) +
                                            " bytes); nothing applied");
    }
  }
  if (!state.changed) {
    if (p->exec) ++stats_.txn_committed;
    r.data += replies;
    return;
  }
  p->replies = std::move(replies);
  ++p->attempts;
  r.results.clear();
  StageScope scope(*this, r, p->dispatch);
  Await(1, [this, p](PendingReply& r2) { OnProgramWritten(p, r2); });
  dispatch_->Consistent(r, 0, p->key, false, Writeback(state, base.clock, now));
}

void CommandExecutor::OnProgramWritten(std::shared_ptr<KeyProgram> p, PendingReply& r) {
  core::ClientResult res = std::move(r.results[0]);
  if (!res.status.ok()) return AppendStatusError(res.status, &r.data);
  if (res.applied) {
    if (p->exec) ++stats_.txn_committed;
    r.data += p->replies;
    return;
  }
  // The compare-and-set lost: the key was written since the read. `res.object` is
  // what the key holds now (agreed by the same round).
  if (p->watched) {
    ++stats_.txn_watch_failed;
    return AppendNullArray(&r.data);
  }
  if (p->attempts >= kMaxCasAttempts) {
    return resp::AppendError(&r.data, "TRYAGAIN the key kept changing during " +
                                          std::to_string(kMaxCasAttempts) +
                                          " compare-and-set rounds; nothing applied");
  }
  ++stats_.cas_retries;
  ApplyProgram(p, r, res.object);
}

// ---- The string commands -------------------------------------------------------------

void CommandExecutor::StringCmd(Session& session, std::vector<std::string>& args,
                                std::string* out) {
  StringOp op;
  ReplicationOptions repl;
  if (!ParseStringOp(args, ParseLimits{config_.max_object_bytes}, &op, &repl, out)) return;
  if (op.ReadModifyWrite()) {
    // Runs CONSISTENT: read quorums (GETEX refuses them while parsing), W/PW and CTX do
    // not apply.
    if (!repl.quorums.empty() || repl.has_context) {
      return resp::AppendError(out, "ERR " + (repl.has_context ? std::string("CTX") : repl.quorums[0].first) +
                                        " does not apply to " + Upper(op.name) +
                                        " with these options: it reads and writes the key "
                                        "CONSISTENT");
    }
    if (op.expiry.sets_time() && ttl_guard_) {
      Status st = ttl_guard_();
      if (!st.ok()) return resp::AppendError(out, st.message());
    }
    auto program = std::make_shared<KeyProgram>(session);
    program->key = op.keys[0];
    program->ops.push_back(std::move(op));
    return RunProgram(std::move(program));
  }
  Quorums q;
  if (!SessionQuorums(session, &q, out) || !ApplyReplicationOptions(repl, &q, out)) return;
  if (op.Writes()) return BlindWrite(std::move(op), repl, q, out);
  Await(1, [this, op = std::move(op)](PendingReply& r) {
    const core::ClientResult& res = r.results[0];
    if (!res.status.ok()) return AppendStatusError(res.status, &r.data);
    const int64_t now = clock_.WallMs();
    KeyState state = StateOf(res.object, now);
    ApplyStringOp(op, now, ParseLimits{config_.max_object_bytes}, &state, &r.data);
  });
  StartGet(0, args[1], q);
}

bool CommandExecutor::ApplyReplicationOptions(const ReplicationOptions& repl, Quorums* q,
                                              std::string* out) {
  for (const auto& [name, value] : repl.quorums) {
    int* target = name == "R" ? &q->r : name == "PR" ? &q->pr : name == "W" ? &q->w : &q->pw;
    if (!ResolveQuorum(name, value, target, out)) return false;
  }
  q->consistent = q->consistent || repl.consistent;
  return true;
}

void CommandExecutor::BlindWrite(StringOp op, const ReplicationOptions& repl, const Quorums& q,
                                 std::string* out) {
  // MSETNX: all or nothing over its keys, which one replicated write gives for one key
  // only (README, Transactions).
  std::set<std::string> keys(op.keys.begin(), op.keys.end());
  if (keys.size() > 1) {
    return resp::AppendError(out, "ERR MSETNX over several keys cannot be atomic here (each key "
                                  "is replicated on its own); use SETNX per key");
  }
  if (op.expiry.sets_time() && ttl_guard_) {
    Status st = ttl_guard_();
    if (!st.ok()) return resp::AppendError(out, st.message());
  }
  const StringOp::SetReply style = op.set_reply;
  Await(1, [style](PendingReply& r) {
    const core::ClientResult& res = r.results[0];
    if (!res.status.ok()) return AppendStatusError(res.status, &r.data);
    if (style == StringOp::SetReply::kInteger) return resp::AppendInteger(&r.data, res.applied ? 1 : 0);
    if (!res.applied) return resp::AppendNull(&r.data);
    resp::AppendSimple(&r.data, "OK");
  });
  StartPut(0, op.keys[0], SetSpec(op, repl, clock_.WallMs()), q);
}

}  // namespace itsuka::server
