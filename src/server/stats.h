// Counters the node exports through INFO. Plain data owned by the Node; updated on
// the event-loop thread only.
#pragma once

#include <cstdint>

namespace itsuka::server {

struct Stats {
  int64_t start_wall_ms = 0;
  int64_t start_mono_ms = 0;
  uint64_t connections_received = 0;
  uint64_t rejected_connections = 0;
  uint64_t connected_clients = 0;
  uint64_t commands_processed = 0;
  uint64_t error_replies = 0;
  uint64_t keyspace_hits = 0;
  uint64_t keyspace_misses = 0;
  uint64_t net_input_bytes = 0;
  uint64_t net_output_bytes = 0;
  uint64_t protocol_errors = 0;
  uint64_t query_buffer_disconnects = 0;
  uint64_t output_buffer_disconnects = 0;
  uint64_t idle_disconnects = 0;
  uint64_t commit_failures = 0;
  // Client memory (issue 11): accounted bytes of every client's buffers, replies and
  // read results in flight (the figure server.max_memory_bytes bounds), its peak, and
  // what the limits refused or closed.
  int64_t client_memory_bytes = 0;
  int64_t client_memory_peak_bytes = 0;
  int64_t allocated_peak_bytes = 0;  // the highest heap in use INFO has seen
  uint64_t oom_refusals = 0;            // commands answered -OOM at the ceiling
  uint64_t unauth_evictions = 0;        // oldest unauthenticated closed at max_unauth_clients
  uint64_t memory_evictions = 0;        // clients closed at the ceiling (large partial input)
  uint64_t deferred_commands = 0;       // times a client's commands waited for its output
  uint64_t reply_limit_refusals = 0;    // replies replaced by an error at the output limit
  uint64_t unauth_idle_disconnects = 0;
  uint64_t auth_failures = 0;
  uint64_t auth_rate_limited = 0;       // AUTH refused: too many failures from the address
  // Commands processed in the last full second, sampled by the node's timer.
  uint64_t instantaneous_ops_per_sec = 0;
  // MULTI/EXEC and read-modify-write commands (server/txn_commands.cc): transactions
  // answered with their replies, refused with -EXECABORT, answered nil (a WATCHed key
  // changed), and compare-and-set rounds retried after losing to another writer.
  uint64_t txn_committed = 0;
  uint64_t txn_aborted = 0;
  uint64_t txn_watch_failed = 0;
  uint64_t cas_retries = 0;
};

}  // namespace itsuka::server
