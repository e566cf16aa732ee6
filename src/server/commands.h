// Redis-protocol commands of a single node: parsing of arguments and options, the
// local read/write path through core::ApplyWrite, and Redis-compatible replies.
//
// Thread-compatible: used from the event-loop thread only.
#pragma once

#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/object.h"
#include "itsuka/clock.h"
#include "itsuka/config.h"
#include "server/session.h"
#include "server/stats.h"
#include "server/store.h"

namespace itsuka::server {

class CommandExecutor {
 public:
  CommandExecutor(const Config& config, Store& store, Stats& stats, const Clock& clock);

  // Runs one command and appends its reply to *out.
  void Execute(Session& session, std::vector<std::string>& args, std::string* out);

  // INFO text for the given section ("" = default sections).
  std::string Info(std::string_view section) const;

 private:
  struct Command;
  using Handler = void (CommandExecutor::*)(Session&, std::vector<std::string>&, std::string*);
  struct Command {
    std::string name;
    int arity;  // Redis convention: N exact, -N at least N (the name counts)
    std::vector<std::string> flags;
    int first_key, last_key, step;
    bool needs_auth;
    Handler handler;
  };

  void Ping(Session&, std::vector<std::string>&, std::string*);
  void Echo(Session&, std::vector<std::string>&, std::string*);
  void Quit(Session&, std::vector<std::string>&, std::string*);
  void Select(Session&, std::vector<std::string>&, std::string*);
  void Hello(Session&, std::vector<std::string>&, std::string*);
  void Auth(Session&, std::vector<std::string>&, std::string*);
  void CommandCmd(Session&, std::vector<std::string>&, std::string*);
  void InfoCmd(Session&, std::vector<std::string>&, std::string*);
  void ConfigCmd(Session&, std::vector<std::string>&, std::string*);
  void ClientCmd(Session&, std::vector<std::string>&, std::string*);
  void Get(Session&, std::vector<std::string>&, std::string*);
  void VGet(Session&, std::vector<std::string>&, std::string*);
  void Set(Session&, std::vector<std::string>&, std::string*);
  void Del(Session&, std::vector<std::string>&, std::string*);
  void Exists(Session&, std::vector<std::string>&, std::string*);
  void MGet(Session&, std::vector<std::string>&, std::string*);
  void MSet(Session&, std::vector<std::string>&, std::string*);
  void Ttl(Session&, std::vector<std::string>&, std::string*);
  void DbSize(Session&, std::vector<std::string>&, std::string*);

  // Reads a key; on failure appends the error reply and returns false.
  bool ReadObject(const std::string& key, core::Object* obj, std::string* out);
  // Writes a new version with `context` (the local clock when null) and stages it.
  Status WriteVersion(Session& session, const std::string& key, const core::Object& current,
                      const core::VClock* context, core::NewVersion version);
  void AppendValues(const core::Object& obj, std::string* out);
  void AppendStatusError(const Status& st, std::string* out);
  void AppendCommandInfo(const Command& cmd, std::string* out) const;

  const Config& config_;
  Store& store_;
  Stats& stats_;
  const Clock& clock_;
  core::ObjectLimits limits_;
  std::unordered_map<std::string, Command> commands_;
};

}  // namespace itsuka::server
