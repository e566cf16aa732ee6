// INCR, INCRBY, DECR, DECRBY: convergent counters (core/counter.h; DESIGN 4.18). Each is
// one eventual write whose new version the coordinating primary builds from its copy
// (WriteSpec::Cond::kIncrement), so it stays writable under a sloppy quorum and
// concurrent increments through any nodes all count. The reply is the value the
// coordinator made (its copy after applying: increments it has not yet merged from
// other coordinators are missing from it, and a later read shows them).
#include "server/commands.h"

#include <limits>

#include "core/counter.h"
#include "server/string_ops.h"
#include "wire/resp.h"

namespace itsuka::server {

namespace resp = wire::resp;

void CommandExecutor::Incr(Session& session, std::vector<std::string>& args, std::string* out) {
  const std::string name = AsciiLower(args[0]);
  const bool by = name == "incrby" || name == "decrby";
  const bool down = name == "decr" || name == "decrby";
  int64_t delta = 1;
  if (by && !ParseInt64(args[2], &delta)) {
    return resp::AppendError(out, "ERR value is not an integer or out of range");
  }
  if (down) {
    if (delta == std::numeric_limits<int64_t>::min()) {
      return resp::AppendError(out, "ERR decrement would overflow");
    }
    delta = -delta;
  }
  Quorums q;
  if (!SessionQuorums(session, &q, out)) return;
  for (size_t i = by ? 3 : 2; i < args.size(); ++i) {
    const std::string opt = AsciiLower(args[i]);
    if ((opt == "w" || opt == "pw") && i + 1 < args.size()) {
      if (!ResolveQuorum(opt == "w" ? "W" : "PW", args[++i], opt == "w" ? &q.w : &q.pw, out)) return;
    } else if (opt == "consistent") {
      q.consistent = true;
    } else {
      return resp::AppendError(out, "ERR syntax error");
    }
  }
  const int64_t now = clock_.WallMs();
  Await(1, [now](PendingReply& r) {
    const core::ClientResult& res = r.results[0];
    if (!res.status.ok()) return AppendStatusError(res.status, &r.data);
    std::optional<core::CounterView> view = core::ReadCounter(res.object, now);
    if (!view || !view->exists) {
      return resp::AppendError(&r.data, "ERR the increment was applied but its value is unknown");
    }
    resp::AppendInteger(&r.data, view->value);
  });
  core::WriteSpec spec;
  spec.version = core::NewVersion{false, std::to_string(delta), 0, now};
  spec.cond = core::WriteSpec::Cond::kIncrement;
  StartPut(0, args[1], std::move(spec), q);
}

}  // namespace itsuka::server
