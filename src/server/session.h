// Per-connection state that commands read and change.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/version.h"

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
  bool no_evict = false;    // CLIENT NO-EVICT on: not closed at server.max_memory_bytes
  int64_t auth_failures = 0;   // failed AUTH/HELLO AUTH on this connection
  int64_t reply_delay_ms = 0;  // set by a failed AUTH: hold its reply (the client clears it)

  // MULTI/EXEC (server/txn_commands.cc). Between MULTI and EXEC/DISCARD commands are
  // queued as given (multi_bytes: their accounted size); a command refused while
  // queueing sets multi_failed, and EXEC then answers -EXECABORT.
  bool in_multi = false;
  bool multi_failed = false;
  std::vector<std::vector<std::string>> multi_queue;
  size_t multi_bytes = 0;
  // WATCHed keys with what a CONSISTENT read of each showed when WATCH ran. `known` is
  // false until that read answered, and stays false if it failed (EXEC then aborts).
  struct Watch {
    bool known = false;
    bool live = false;  // the key had a live value
    core::VClock clock;
  };
  std::map<std::string, Watch> watched;
  size_t watch_bytes = 0;    // the watched keys' bytes (accounted like multi_bytes)
  uint64_t watch_epoch = 0;  // raised when the watches are cleared (a late WATCH read is ignored)
  // Commands in flight that the connection's later commands wait for (WATCH, EXEC, a
  // read-modify-write): while above 0, each command waits until every earlier reply is
  // ready, so they keep the connection's order as in Redis.
  int barriers = 0;
  // Leaves MULTI (EXEC, DISCARD): the queue is dropped; watches stay (callers clear them).
  void EndMulti() {
    in_multi = false;
    multi_failed = false;
    std::vector<std::vector<std::string>>().swap(multi_queue);
    multi_bytes = 0;
  }
};

}  // namespace itsuka::server
