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
  // Commands processed in the last full second, sampled by the node's timer.
  uint64_t instantaneous_ops_per_sec = 0;
};

}  // namespace itsuka::server
