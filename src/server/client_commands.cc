// CLIENT and its subcommands in the command table (CommandExecutor, server/commands.h):
// SETNAME, GETNAME, ID, SETINFO, INFO, LIST, KILL, NO-EVICT. The node's other
// connections come through the directory the node sets (SetClientDirectory).
#include <algorithm>

#include "server/commands.h"
#include "server/string_ops.h"
#include "wire/resp.h"

namespace itsuka::server {
namespace {

namespace resp = wire::resp;

}  // namespace

std::string ClientNameError(const std::string& name) {
  if (name.size() > kMaxClientNameBytes) {
    return "ERR Client names are at most " + std::to_string(kMaxClientNameBytes) + " bytes";
  }
  if (!std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c <= '~'; })) {
    return "ERR Client names cannot contain spaces, newlines or special characters.";
  }
  return std::string();
}

// One line of CLIENT LIST / CLIENT INFO, with the fields of Redis's that apply here
// (flags: N normal, x in MULTI, e no-evict; multi: queued commands, -1 outside MULTI).
std::string CommandExecutor::ClientLine(const ClientView& c) const {
  const Session& s = *c.session;
  const int64_t now = clock_.MonotonicMs();
  std::string flags = s.in_multi ? "x" : "";
  if (s.no_evict) flags += "e";
  if (flags.empty()) flags = "N";
  std::string line = "id=" + std::to_string(s.id) + " addr=" + s.peer + " name=" + s.name +
                     " age=" + std::to_string((now - s.created_mono_ms) / 1000) +
                     " idle=" + std::to_string((now - s.last_active_mono_ms) / 1000) +
                     " flags=" + flags + " db=0 sub=0 psub=0" +
                     " multi=" + (s.in_multi ? std::to_string(s.multi_queue.size()) : "-1") +
                     " watch=" + std::to_string(s.watched.size()) +
                     " qbuf=" + std::to_string(c.input_bytes) +
                     " tot-mem=" + std::to_string(c.memory_bytes) +
                     " replies=" + std::to_string(c.pending_replies) +
                     " cmd=" + (s.last_command.empty() ? "NULL" : s.last_command) +
                     " user=default resp=2" + (s.authenticated ? "" : " auth=no");
  return line + "\n";
}

void CommandExecutor::ClientCmd(Session& session, std::vector<std::string>& args,
                                std::string* out) {
  const std::string sub = AsciiLower(args[1]);
  if (sub == "setname" && args.size() == 3) {
    if (std::string err = ClientNameError(args[2]); !err.empty()) {
      return resp::AppendError(out, err);
    }
    session.name = args[2];
    return resp::AppendSimple(out, "OK");
  }
  if (sub == "getname" && args.size() == 2) {
    return session.name.empty() ? resp::AppendNull(out) : resp::AppendBulk(out, session.name);
  }
  if (sub == "id" && args.size() == 2) {
    return resp::AppendInteger(out, static_cast<int64_t>(session.id));
  }
  if (sub == "setinfo" && args.size() == 4) return resp::AppendSimple(out, "OK");
  if (sub == "info" && args.size() == 2) {
    ClientView self{&session};
    if (client_list_) {
      for (const ClientView& c : client_list_()) {
        if (c.session == &session) self = c;
      }
    }
    return resp::AppendBulk(out, ClientLine(self));
  }
  if (sub == "list" && (args.size() == 2 || (args.size() == 4 && AsciiLower(args[2]) == "type" &&
                                             AsciiLower(args[3]) == "normal"))) {
    std::vector<ClientView> all = client_list_ ? client_list_() : std::vector<ClientView>{{&session}};
    std::sort(all.begin(), all.end(),
              [](const ClientView& a, const ClientView& b) { return a.session->id < b.session->id; });
    std::string text;
    for (const ClientView& c : all) text += ClientLine(c);
    return resp::AppendBulk(out, text);
  }
  if (sub == "kill" && args.size() >= 3) return ClientKill(session, args, out);
  if (sub == "no-evict" && args.size() == 3) {
    const std::string v = AsciiLower(args[2]);
    if (v != "on" && v != "off") return resp::AppendError(out, "ERR syntax error");
    session.no_evict = v == "on";
    return resp::AppendSimple(out, "OK");
  }
  resp::AppendError(out, "ERR unknown subcommand or wrong number of arguments for '" +
                             args[1].substr(0, 128) +
                             "'. Try CLIENT SETNAME, GETNAME, ID, SETINFO, INFO, LIST, KILL, "
                             "NO-EVICT.");
}

// CLIENT KILL addr (answers OK or an error), or CLIENT KILL with filters ID id, ADDR
// addr, SKIPME yes|no (answers how many were closed). The asking connection itself is
// closed after its reply, as QUIT does.
void CommandExecutor::ClientKill(Session& session, std::vector<std::string>& args,
                                 std::string* out) {
  const bool old_form = args.size() == 3;
  int64_t id = -1;
  std::string addr = old_form ? args[2] : std::string();
  bool skip_me = !old_form;
  for (size_t i = 2; !old_form && i < args.size(); i += 2) {
    if (i + 1 >= args.size()) return resp::AppendError(out, "ERR syntax error");
    const std::string opt = AsciiLower(args[i]);
    const std::string& v = args[i + 1];
    if (opt == "id") {
      if (!ParseInt64(v, &id) || id < 0) return resp::AppendError(out, "ERR client-id should be greater than 0");
    } else if (opt == "addr") {
      addr = v;
    } else if (opt == "skipme" && (AsciiLower(v) == "yes" || AsciiLower(v) == "no")) {
      skip_me = AsciiLower(v) == "yes";
    } else if (opt == "type" && AsciiLower(v) == "normal") {
      // every client here is a normal one
    } else {
      return resp::AppendError(out, "ERR syntax error");
    }
  }
  std::vector<ClientView> all = client_list_ ? client_list_() : std::vector<ClientView>{{&session}};
  int64_t killed = 0;
  for (const ClientView& c : all) {
    const Session& s = *c.session;
    if ((id >= 0 && s.id != static_cast<uint64_t>(id)) || (!addr.empty() && s.peer != addr)) continue;
    if (&s == &session) {
      if (skip_me) continue;
      session.close_after_reply = true;
    } else if (!client_kill_ || !client_kill_(s.id)) {
      continue;
    }
    ++killed;
  }
  if (!old_form) return resp::AppendInteger(out, killed);
  if (killed == 0) return resp::AppendError(out, "ERR No such client");
  resp::AppendSimple(out, "OK");
}

}  // namespace itsuka::server
