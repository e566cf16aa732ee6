// Node configuration: the settings of conf/itsuka.toml, loaded from the file and
// overridden by command-line flags. Every setting has a safe default, a type and a
// range; a bad value is reported with the setting's full name ("server.port").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "itsuka/status.h"

namespace itsuka {

struct Config {
  // [node]
  std::string node_id = "node1";
  std::string data_dir = ".itsuka-local/standalone/data";
  // [server]
  std::string bind = "127.0.0.1";
  int64_t port = 7001;
  std::string requirepass;
  int64_t max_clients = 10000;
  int64_t idle_timeout_s = 0;
  int64_t shutdown_timeout_s = 5;
  // [limits]
  int64_t max_bulk_bytes = 16 << 20;
  int64_t max_args = 1 << 20;
  int64_t max_inline_bytes = 64 << 10;
  int64_t max_query_buffer_bytes = 32 << 20;
  int64_t max_output_buffer_bytes = 256 << 20;
  int64_t unauth_max_args = 10;
  int64_t unauth_max_bulk_bytes = 16384;
  int64_t max_object_bytes = 32 << 20;
  int64_t max_siblings = 64;
  // [cluster]
  std::string cluster_name = "itsuka";
  int64_t peer_port = 0;          // 0: server.port + 10000
  std::vector<std::string> seeds;  // "id@host:port" of the other members
  int64_t n = 3;
  int64_t partitions = 256;
  std::string read_quorum = "one";
  std::string write_quorum = "quorum";
  int64_t request_timeout_ms = 2000;
  int64_t max_peer_queue_bytes = 64 << 20;
  int64_t heartbeat_interval_ms = 200;
  int64_t phi_threshold = 8;
  int64_t max_peer_connections = 256;  // accepted peer connections at once
  int64_t gossip_interval_ms = 200;
  int64_t transfer_interval_ms = 20;
  // [storage]
  std::string durability = "os";  // "os" | "fsync"
  int64_t block_cache_mb = 64;
  int64_t write_buffer_mb = 64;
  // The on-disk format a NEW data directory is created with (docs/DESIGN.md 4.12): 2 places
  // keys by Redis Cluster hash slot (cluster.partitions must divide 16384), 1 by XXH3-64
  // (the placement of builds before formats were versioned). A directory that records a
  // format keeps it; one that records none is format 1.
  int64_t data_format = 2;
  // Bound of the cache of committed objects (server/object_cache.h), in MiB; 0: off.
  int64_t object_cache_mb = 32;
  // 1: start even if the write-ahead log is corrupted before its tail, with what is
  // readable (the node then holds itself not authoritative until repaired).
  int64_t allow_wal_corruption = 0;
  // Writes get -IOERR (not applied) while the data directory's file system has less
  // free space than this (0: no check).
  int64_t min_free_mb = 256;
  // [testing]
  int64_t unsafe_ack_before_quorum = 0;  // 1: acknowledge writes before W acks (BROKEN)
  int64_t replica_write_delay_ms = 0;    // >0: hold outgoing ReplicaWrite messages this long
  std::string replica_write_delay_peer;  // ... only those to this node ("" = to every peer)
  int64_t replica_write_delay_jitter_ms = 0;  // ... plus a uniform random 0..this many ms
  // [log]
  std::string log_level = "info";
  std::string log_file;
  // [cluster] (continued)
  int64_t sloppy_quorum = 1;  // 1 (true): substitutes stand in for unreachable primaries
  // [handoff]
  int64_t handoff_max_keys_per_target = 1000000;
  int64_t handoff_max_bytes_per_target = 1LL << 30;
  int64_t handoff_max_hint_age_s = 3 * 3600;
  int64_t handoff_rate_keys_per_s = 5000;
  int64_t handoff_max_inflight_per_target = 256;
  // [repair]
  int64_t repair_keys_per_s = 20000;         // 0: unlimited
  int64_t repair_bytes_per_s = 32 << 20;     // 0: unlimited
  int64_t repair_request_timeout_ms = 10000;
  int64_t repair_tombstone_grace_s = 864000;  // must exceed handoff.max_hint_age_s
  int64_t repair_interval_s = 0;             // 0: no background repair
  // [cluster] peer authentication (server/peer_auth.h, server/peers.h)
  std::string secret_file;            // cluster id + secret(s); required with cluster.seeds
  int64_t insecure_no_auth = 0;       // 1 (true): peers are not authenticated (BROKEN)
  std::string cluster_id;             // insecure mode only: 32 hex digits ("" = none)
  int64_t max_peer_buffer_bytes = 256 << 20;  // all peer connections' receive buffers
  int64_t max_handshaking_peers = 32;  // accepted connections not yet authenticated
  // Newest peer protocol version this node offers (0: the build's newest). Set to the
  // old build's version while a rolling upgrade may still be rolled back (docs/DESIGN.md 3).
  int64_t max_protocol_version = 0;
  // [tls] (names follow redis: tls-port, tls-cert-file, tls-key-file, tls-ca-cert-file,
  // tls-auth-clients; tls.peers is redis's tls-cluster)
  int64_t tls_port = 0;                 // 0: no TLS client port
  std::string tls_cert_file;            // PEM certificate of this node
  std::string tls_key_file;             // its PEM private key
  std::string tls_ca_cert_file;         // PEM CA that clients' and peers' certificates chain to
  std::string tls_auth_clients = "yes";  // yes | no | optional: client certificates
  int64_t tls_peers = 0;                // 1: peer connections use TLS, both sides verified
  int64_t tls_handshake_timeout_ms = 10000;

  // Client memory and abuse bounds (issue 11). server.max_memory_bytes is the node-wide
  // ceiling on accounted client memory (0 = off); the rest are [limits].
  int64_t max_memory_bytes = 1LL << 30;
  int64_t output_soft_limit_bytes = 8 << 20;  // pause a client's commands past this
  int64_t unauth_idle_timeout_s = 10;         // 0: off (only with requirepass)
  int64_t auth_max_failures = 10;             // per source address within the window
  int64_t auth_failure_window_s = 60;         // also how long an address is refused
  int64_t auth_failure_delay_ms = 100;        // x failures on the connection, at most 5 s
  int64_t max_unauth_clients = 1000;          // connections not yet authenticated, at most
                                              // half of max_clients (only with requirepass)

  // [cluster] clock offsets (members branch)
  int64_t max_clock_offset_ms = 500;  // 0: never refuse TTL writes over clock offsets

  // [metrics] (issue 14)
  int64_t metrics_port = 0;  // Prometheus GET /metrics on server.bind; 0: off
  // [log] (issue 14)
  int64_t log_max_bytes = 0;     // log.file past this size is renamed to <file>.1; 0: no cap
  std::string log_format = "text";  // "text" | "json" (one JSON object a line)
  // [cluster] keyspace (issue 13): KEYS is refused when the cluster holds more keys.
  int64_t keys_max = 100000;

  // Not settings: where the values came from.
  std::string config_file;
};

// Parses the command line (argv[0] is skipped). Flags: --config FILE, --port N,
// --bind ADDR, --data-dir DIR, --node-id ID, --requirepass PW, --log-level L,
// --log-file F, --set section.key=value (repeatable), --check-config, --help, --version,
// --gen-secret FILE [--cluster-id HEX].
// --log-file F, --set section.key=value (repeatable), --check-config, --help, --version;
// redis-server's TLS flags --tls-port N, --tls-cert-file F, --tls-key-file F,
// --tls-ca-cert-file F, --tls-auth-clients yes|no|optional, --tls-cluster yes|no.
struct CommandLine {
  std::string config_file;
  std::vector<std::pair<std::string, std::string>> overrides;  // setting name -> text value
  bool check_config = false;
  std::string gen_secret_file;  // --gen-secret FILE: write a new secret file and exit
  std::string gen_cluster_id;   // --cluster-id HEX: ... for this existing cluster
  bool help = false;
  bool version = false;
};
Result<CommandLine> ParseCommandLine(int argc, const char* const* argv);
std::string Usage();

// Loads the file (if any), applies overrides, and validates the result.
Result<Config> LoadConfig(const CommandLine& cmdline);
// Same, from TOML text (for tests).
Result<Config> ParseConfigText(const std::string& toml_text, const std::string& origin,
                               const std::vector<std::pair<std::string, std::string>>& overrides);

// A member named in cluster.seeds.
struct SeedAddress {
  std::string id;
  std::string host;
  int port = 0;
};
// Parses "id@host:port".
Result<SeedAddress> ParseSeed(const std::string& text);
int64_t EffectivePeerPort(const Config& config);

// Every setting as ("section.key", current value as text), in file order; the
// requirepass value is masked. Used by CONFIG GET and INFO.
std::vector<std::pair<std::string, std::string>> ListSettings(const Config& config);

// The settings CONFIG SET may change on a running node: each is read where it is used
// (per command, per connection check, per accept), so a new value takes effect at once
// and leaves nothing already running inconsistent.
const std::vector<std::string>& LiveSettings();
// Sets one of LiveSettings() from text, after checking the value and the whole
// configuration with it; on an error *config is unchanged.
Status SetLiveSetting(Config* config, const std::string& name, const std::string& value);

}  // namespace itsuka
