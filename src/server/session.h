// Per-connection state that commands read and change.
#pragma once

#include <cstdint>
#include <string>

namespace itsuka::server {

struct Session {
  uint64_t id = 0;
  std::string peer;
  std::string name;             // CLIENT SETNAME
  bool authenticated = false;
  bool close_after_reply = false;  // QUIT, protocol errors
  // ITSUKA.DEFAULTS: per-connection quorums, as given ("" = the config's default).
  std::string r, w, pr, pw;
  int64_t created_mono_ms = 0;
  int64_t last_active_mono_ms = 0;
  std::string last_command;
  bool consistent = false;  // ITSUKA.DEFAULTS CONSISTENT on
  int64_t auth_failures = 0;   // failed AUTH/HELLO AUTH on this connection
  int64_t reply_delay_ms = 0;  // set by a failed AUTH: hold its reply (the client clears it)
};

}  // namespace itsuka::server
