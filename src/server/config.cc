#include "itsuka/config.h"

#include <arpa/inet.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>
#include <variant>

#include "core/messages.h"

namespace itsuka {
namespace {

struct IntSetting {
  int64_t Config::*field;
  int64_t min;
  int64_t max;
};
struct StringSetting {
  std::string Config::*field;
  std::vector<std::string> allowed;  // empty: any string
};
struct ListSetting {
  std::vector<std::string> Config::*field;
};
struct Setting {
  const char* name;
  std::variant<IntSetting, StringSetting, ListSetting> kind;
};

constexpr int64_t kMaxInt = INT64_MAX / 2;

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> settings = {
      {"node.id", StringSetting{&Config::node_id, {}}},
      {"node.data_dir", StringSetting{&Config::data_dir, {}}},
      {"server.bind", StringSetting{&Config::bind, {}}},
      {"server.port", IntSetting{&Config::port, 0, 65535}},
      {"server.requirepass", StringSetting{&Config::requirepass, {}}},
      {"server.max_clients", IntSetting{&Config::max_clients, 1, 1000000}},
      {"server.idle_timeout_s", IntSetting{&Config::idle_timeout_s, 0, kMaxInt}},
      {"server.shutdown_timeout_s", IntSetting{&Config::shutdown_timeout_s, 0, 3600}},
      {"limits.max_bulk_bytes", IntSetting{&Config::max_bulk_bytes, 1, 1LL << 32}},
      {"limits.max_args", IntSetting{&Config::max_args, 1, 1LL << 24}},
      {"limits.max_inline_bytes", IntSetting{&Config::max_inline_bytes, 16, 1LL << 30}},
      {"limits.max_query_buffer_bytes", IntSetting{&Config::max_query_buffer_bytes, 1024, 1LL << 34}},
      {"limits.max_output_buffer_bytes", IntSetting{&Config::max_output_buffer_bytes, 1024, 1LL << 40}},
      {"limits.unauth_max_args", IntSetting{&Config::unauth_max_args, 2, 1LL << 24}},
      {"limits.unauth_max_bulk_bytes", IntSetting{&Config::unauth_max_bulk_bytes, 64, 1LL << 32}},
      {"limits.max_object_bytes", IntSetting{&Config::max_object_bytes, 1024, 1LL << 32}},
      {"limits.max_siblings", IntSetting{&Config::max_siblings, 1, 100000}},
      {"server.max_memory_bytes", IntSetting{&Config::max_memory_bytes, 0, 1LL << 50}},
      {"limits.output_soft_limit_bytes", IntSetting{&Config::output_soft_limit_bytes, 1024, 1LL << 40}},
      {"limits.unauth_idle_timeout_s", IntSetting{&Config::unauth_idle_timeout_s, 0, kMaxInt}},
      {"limits.auth_max_failures", IntSetting{&Config::auth_max_failures, 1, 1000000}},
      {"limits.auth_failure_window_s", IntSetting{&Config::auth_failure_window_s, 1, 86400}},
      {"limits.auth_failure_delay_ms", IntSetting{&Config::auth_failure_delay_ms, 0, 5000}},
      {"limits.max_unauth_clients", IntSetting{&Config::max_unauth_clients, 1, 1000000}},
      {"cluster.name", StringSetting{&Config::cluster_name, {}}},
      {"cluster.peer_port", IntSetting{&Config::peer_port, 0, 65535}},
      {"cluster.seeds", ListSetting{&Config::seeds}},
      {"cluster.n", IntSetting{&Config::n, 1, 9}},
      {"cluster.partitions", IntSetting{&Config::partitions, 1, 65536}},
      {"cluster.keys_max", IntSetting{&Config::keys_max, 0, 100000000}},
      {"cluster.read_quorum", StringSetting{&Config::read_quorum, {}}},
      {"cluster.write_quorum", StringSetting{&Config::write_quorum, {}}},
      {"cluster.request_timeout_ms", IntSetting{&Config::request_timeout_ms, 10, 600000}},
      {"cluster.max_peer_queue_bytes", IntSetting{&Config::max_peer_queue_bytes, 1 << 20, 1LL << 34}},
      {"cluster.heartbeat_interval_ms", IntSetting{&Config::heartbeat_interval_ms, 10, 60000}},
      {"cluster.phi_threshold", IntSetting{&Config::phi_threshold, 1, 100}},
      {"cluster.max_peer_connections", IntSetting{&Config::max_peer_connections, 1, 65536}},
      {"cluster.gossip_interval_ms", IntSetting{&Config::gossip_interval_ms, 10, 60000}},
      {"cluster.transfer_interval_ms", IntSetting{&Config::transfer_interval_ms, 0, 60000}},
      {"storage.durability", StringSetting{&Config::durability, {"os", "fsync"}}},
      {"storage.block_cache_mb", IntSetting{&Config::block_cache_mb, 1, 1LL << 20}},
      {"storage.write_buffer_mb", IntSetting{&Config::write_buffer_mb, 1, 1LL << 16}},
      {"storage.data_format", IntSetting{&Config::data_format, 1, 2}},
      {"storage.object_cache_mb", IntSetting{&Config::object_cache_mb, 0, 1LL << 20}},
      // Corruption and I/O errors (README "Corruption and I/O errors").
      {"storage.allow_wal_corruption", IntSetting{&Config::allow_wal_corruption, 0, 1}},
      {"storage.min_free_mb", IntSetting{&Config::min_free_mb, 0, 1LL << 30}},
      {"testing.unsafe_ack_before_quorum", IntSetting{&Config::unsafe_ack_before_quorum, 0, 1}},
      {"testing.replica_write_delay_ms", IntSetting{&Config::replica_write_delay_ms, 0, 60000}},
      {"testing.replica_write_delay_peer", StringSetting{&Config::replica_write_delay_peer, {}}},
      {"testing.replica_write_delay_jitter_ms", IntSetting{&Config::replica_write_delay_jitter_ms, 0, 60000}},
      {"log.level", StringSetting{&Config::log_level, {"debug", "info", "warn", "error"}}},
      {"log.file", StringSetting{&Config::log_file, {}}},
      {"cluster.sloppy_quorum", IntSetting{&Config::sloppy_quorum, 0, 1}},
      {"handoff.max_keys_per_target", IntSetting{&Config::handoff_max_keys_per_target, 1, 1LL << 40}},
      {"handoff.max_bytes_per_target", IntSetting{&Config::handoff_max_bytes_per_target, 1024, 1LL << 50}},
      {"handoff.max_hint_age_s", IntSetting{&Config::handoff_max_hint_age_s, 1, 1LL << 31}},
      {"handoff.rate_keys_per_s", IntSetting{&Config::handoff_rate_keys_per_s, 1, 10000000}},
      {"handoff.max_inflight_per_target", IntSetting{&Config::handoff_max_inflight_per_target, 1, 100000}},
      {"repair.keys_per_s", IntSetting{&Config::repair_keys_per_s, 0, kMaxInt}},
      {"repair.bytes_per_s", IntSetting{&Config::repair_bytes_per_s, 0, kMaxInt}},
      {"repair.request_timeout_ms", IntSetting{&Config::repair_request_timeout_ms, 10, 3600000}},
      {"repair.tombstone_grace_s", IntSetting{&Config::repair_tombstone_grace_s, 0, kMaxInt / 1000}},
      {"repair.interval_s", IntSetting{&Config::repair_interval_s, 0, kMaxInt / 1000}},
      {"cluster.secret_file", StringSetting{&Config::secret_file, {}}},
      {"cluster.insecure_no_auth", IntSetting{&Config::insecure_no_auth, 0, 1}},
      {"cluster.id", StringSetting{&Config::cluster_id, {}}},
      {"cluster.max_peer_buffer_bytes", IntSetting{&Config::max_peer_buffer_bytes, 1 << 20, 1LL << 40}},
      {"cluster.max_handshaking_peers", IntSetting{&Config::max_handshaking_peers, 1, 4096}},
      {"cluster.max_protocol_version", IntSetting{&Config::max_protocol_version, 0, 1 << 16}},
      {"tls.port", IntSetting{&Config::tls_port, 0, 65535}},
      {"tls.cert_file", StringSetting{&Config::tls_cert_file, {}}},
      {"tls.key_file", StringSetting{&Config::tls_key_file, {}}},
      {"tls.ca_cert_file", StringSetting{&Config::tls_ca_cert_file, {}}},
      {"tls.auth_clients", StringSetting{&Config::tls_auth_clients, {"yes", "no", "optional"}}},
      {"tls.peers", IntSetting{&Config::tls_peers, 0, 1}},
      {"tls.handshake_timeout_ms", IntSetting{&Config::tls_handshake_timeout_ms, 100, 600000}},
      {"cluster.max_clock_offset_ms", IntSetting{&Config::max_clock_offset_ms, 0, 86400000}},
      {"metrics.port", IntSetting{&Config::metrics_port, 0, 65535}},
      {"log.max_bytes", IntSetting{&Config::log_max_bytes, 0, 1LL << 50}},
      {"log.format", StringSetting{&Config::log_format, {"text", "json"}}},
  };
  return settings;
}

const Setting* FindSetting(std::string_view name) {
  for (const Setting& s : Settings()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

Status CheckInt(const Setting& s, const IntSetting& is, int64_t v) {
  if (v < is.min || v > is.max) {
    return Status::InvalidArgument("setting '" + std::string(s.name) + "': " + std::to_string(v) +
                                   " is out of range [" + std::to_string(is.min) + ", " +
                                   std::to_string(is.max) + "]");
  }
  return Status::Ok();
}

Status CheckString(const Setting& s, const StringSetting& ss, const std::string& v) {
  if (ss.allowed.empty()) return Status::Ok();
  for (const std::string& a : ss.allowed) {
    if (v == a) return Status::Ok();
  }
  std::string list;
  for (const std::string& a : ss.allowed) list += (list.empty() ? "" : ", ") + a;
  return Status::InvalidArgument("setting '" + std::string(s.name) + "': '" + v +
                                 "' is not one of: " + list);
}

// Applies a value given as text (command line).
Status SetFromText(Config* c, const Setting& s, const std::string& text) {
  if (const auto* is = std::get_if<IntSetting>(&s.kind)) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    // On/off settings also take redis's yes/no (--tls-cluster yes).
    const bool on_off = is->min == 0 && is->max == 1 &&
                        (text == "true" || text == "false" || text == "yes" || text == "no");
    if (on_off) v = text == "true" || text == "yes" ? 1 : 0;
    if (!on_off && (ec != std::errc() || p != text.data() + text.size())) {
      if (is->min == 0 && is->max == 1) {
        return Status::InvalidArgument("setting '" + std::string(s.name) + "': '" + text +
                                       "' must be true, false, yes, no, 1 or 0");
      }
      return Status::InvalidArgument("setting '" + std::string(s.name) + "': '" + text +
                                     "' is not an integer");
    }
    Status st = CheckInt(s, *is, v);
    if (st.ok()) c->*(is->field) = v;
    return st;
  }
  if (const auto* ls = std::get_if<ListSetting>(&s.kind)) {
    std::vector<std::string> items;
    size_t start = 0;
    while (start <= text.size() && !text.empty()) {
      size_t comma = text.find(',', start);
      if (comma == std::string::npos) comma = text.size();
      if (comma > start) items.push_back(text.substr(start, comma - start));
      start = comma + 1;
    }
    c->*(ls->field) = std::move(items);
    return Status::Ok();
  }
  const auto& ss = std::get<StringSetting>(s.kind);
  Status st = CheckString(s, ss, text);
  if (st.ok()) c->*(ss.field) = text;
  return st;
}

// Applies a value from the TOML document.
Status SetFromToml(Config* c, const Setting& s, const toml::node& node) {
  if (const auto* is = std::get_if<IntSetting>(&s.kind)) {
    std::optional<int64_t> v = node.value_exact<int64_t>();
    if (!v && is->min == 0 && is->max == 1) {  // an on/off setting may be a TOML boolean
      if (std::optional<bool> b = node.value_exact<bool>()) v = *b ? 1 : 0;
    }
    if (!v) {
      if (is->min == 0 && is->max == 1) {
        return Status::InvalidArgument("setting '" + std::string(s.name) + "' must be true or false");
      }
      return Status::InvalidArgument("setting '" + std::string(s.name) + "' must be an integer");
    }
    Status st = CheckInt(s, *is, *v);
    if (st.ok()) c->*(is->field) = *v;
    return st;
  }
  if (const auto* ls = std::get_if<ListSetting>(&s.kind)) {
    const toml::array* arr = node.as_array();
    if (arr == nullptr) {
      return Status::InvalidArgument("setting '" + std::string(s.name) + "' must be an array of strings");
    }
    std::vector<std::string> items;
    for (const toml::node& item : *arr) {
      std::optional<std::string> v = item.value_exact<std::string>();
      if (!v) {
        return Status::InvalidArgument("setting '" + std::string(s.name) + "' must be an array of strings");
      }
      items.push_back(*v);
    }
    c->*(ls->field) = std::move(items);
    return Status::Ok();
  }
  const auto& ss = std::get<StringSetting>(s.kind);
  std::optional<std::string> v = node.value_exact<std::string>();
  if (!v) return Status::InvalidArgument("setting '" + std::string(s.name) + "' must be a string");
  Status st = CheckString(s, ss, *v);
  if (st.ok()) c->*(ss.field) = *v;
  return st;
}

bool ValidNodeId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char ch : id) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') {
      return false;
    }
  }
  return true;
}

// The files themselves are loaded (and any error named) when the node starts.
Status ValidateTls(const Config& c) {
  const bool clients = c.tls_port != 0;
  if (!clients && c.tls_peers == 0) return Status::Ok();
  const std::string why = clients && c.tls_peers ? "tls.port and tls.peers need"
                          : clients             ? "tls.port needs"
                                                : "tls.peers needs";
  if (c.tls_cert_file.empty()) {
    return Status::InvalidArgument("setting 'tls.cert_file' is empty: " + why + " a certificate");
  }
  if (c.tls_key_file.empty()) {
    return Status::InvalidArgument("setting 'tls.key_file' is empty: " + why + " a private key");
  }
  if (c.tls_ca_cert_file.empty() && (c.tls_peers || c.tls_auth_clients != "no")) {
    return Status::InvalidArgument(
        "setting 'tls.ca_cert_file' is empty: " +
        std::string(c.tls_peers ? "tls.peers verifies peers" : "tls.auth_clients verifies clients") +
        " against a CA");
  }
  if (clients && c.tls_port == c.port) {
    return Status::InvalidArgument("setting 'tls.port': " + std::to_string(c.tls_port) +
                                   " is server.port too");
  }
  if (clients && !c.seeds.empty() && c.tls_port == EffectivePeerPort(c)) {
    return Status::InvalidArgument("setting 'tls.port': " + std::to_string(c.tls_port) +
                                   " is the peer port too");
  }
  return Status::Ok();
}

Status Validate(const Config& c) {
  if (!ValidNodeId(c.node_id)) {
    return Status::InvalidArgument("setting 'node.id': '" + c.node_id +
                                   "' must be 1-64 letters, digits, '-', '_' or '.'");
  }
  if (c.data_dir.empty()) return Status::InvalidArgument("setting 'node.data_dir' is empty");
  if (c.bind.empty()) return Status::InvalidArgument("setting 'server.bind' is empty");
  if (in6_addr a{}; inet_pton(AF_INET, c.bind.c_str(), &a) != 1 &&
                    inet_pton(AF_INET6, c.bind.c_str(), &a) != 1) {
    return Status::InvalidArgument("setting 'server.bind': '" + c.bind.substr(0, 64) +
                                   "' is not an IPv4 or IPv6 address (host names are not resolved)");
  }
  if (c.data_format == 2 && 16384 % c.partitions != 0) {
    return Status::InvalidArgument(
        "setting 'cluster.partitions' = " + std::to_string(c.partitions) +
        " does not divide the 16384 Redis Cluster hash slots, which data format 2 places keys "
        "by: use a power of two up to 16384 (e.g. 256), or storage.data_format = 1 (XXH3 "
        "placement, no CLUSTER SLOTS)");
  }
  if (c.max_query_buffer_bytes < c.max_bulk_bytes) {
    return Status::InvalidArgument(
        "setting 'limits.max_query_buffer_bytes' must be at least limits.max_bulk_bytes");
  }
  if (c.max_memory_bytes != 0 && c.max_memory_bytes < (1 << 20)) {
    return Status::InvalidArgument(
        "setting 'server.max_memory_bytes' must be 0 (off) or at least 1048576");
  }
  if (!c.seeds.empty() && EffectivePeerPort(c) > 65535) {
    return Status::InvalidArgument("setting 'cluster.peer_port': server.port + 10000 is over 65535; "
                                   "set cluster.peer_port");
  }
  for (const std::string& seed : c.seeds) {
    Result<SeedAddress> a = ParseSeed(seed);
    if (!a.ok()) return Status::InvalidArgument("setting 'cluster.seeds': " + a.status().message());
    if (a->id == c.node_id) {
      return Status::InvalidArgument("setting 'cluster.seeds': lists this node ('" + a->id + "')");
    }
  }
  if (c.sloppy_quorum != 0 && c.repair_tombstone_grace_s < c.handoff_max_hint_age_s) {
    // A hint may carry a version the tombstone superseded; once the tombstone is purged
    // that hint would bring the key back. Hints older than max_hint_age_s are dropped.
    return Status::InvalidArgument(
        "setting 'repair.tombstone_grace_s' (" + std::to_string(c.repair_tombstone_grace_s) +
        ") must be at least handoff.max_hint_age_s (" + std::to_string(c.handoff_max_hint_age_s) +
        "): a hint older than a purged tombstone would bring a deleted key back");
  }
  for (const char* name : {"read_quorum", "write_quorum"}) {
    const std::string& v = std::string(name) == "read_quorum" ? c.read_quorum : c.write_quorum;
    int64_t num = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), num);
    bool numeric = ec == std::errc() && p == v.data() + v.size() && num >= 1 && num <= c.n;
    if (!numeric && v != "one" && v != "quorum" && v != "all") {
      return Status::InvalidArgument("setting 'cluster." + std::string(name) + "': '" + v +
                                     "' must be one, quorum, all or 1..cluster.n");
    }
  }
  if (c.max_protocol_version != 0 &&
      (c.max_protocol_version < core::kMinPeerProtocolVersion ||
       c.max_protocol_version > core::kPeerProtocolVersion)) {
    return Status::InvalidArgument(
        "setting 'cluster.max_protocol_version' (" + std::to_string(c.max_protocol_version) +
        "): this build speaks peer protocol versions " +
        std::to_string(core::kMinPeerProtocolVersion) + " to " +
        std::to_string(core::kPeerProtocolVersion) + " (0: the newest)");
  }
  if (!c.secret_file.empty() && c.insecure_no_auth != 0) {
    return Status::InvalidArgument(
        "settings 'cluster.secret_file' and 'cluster.insecure_no_auth' contradict each other; "
        "set one");
  }
  if (!c.cluster_id.empty()) {
    bool hex = c.cluster_id.size() == 32;
    for (char ch : c.cluster_id) hex = hex && std::isxdigit(static_cast<unsigned char>(ch));
    if (!hex) return Status::InvalidArgument("setting 'cluster.id': must be 32 hex digits");
    if (c.insecure_no_auth == 0) {
      return Status::InvalidArgument(
          "setting 'cluster.id' is for insecure mode only; with cluster.secret_file the id "
          "comes from the secret file");
    }
  }
  if (!c.seeds.empty() && c.secret_file.empty() && c.insecure_no_auth == 0) {
    // The peer port opens with cluster.seeds; it must not let anyone in.
    return Status::InvalidArgument(
        "setting 'cluster.secret_file' is not set: cluster members authenticate each other "
        "with a shared secret (create one with 'itsukad --gen-secret FILE' and give every "
        "member a copy), or set cluster.insecure_no_auth = true to let anyone who can reach "
        "the peer port in");
  }
  if (c.metrics_port != 0) {
    const bool clash = c.metrics_port == c.port || c.metrics_port == c.tls_port ||
                       (!c.seeds.empty() && c.metrics_port == EffectivePeerPort(c));
    if (clash) {
      return Status::InvalidArgument("setting 'metrics.port': " + std::to_string(c.metrics_port) +
                                     " is the client, TLS or peer port too");
    }
  }
  if (c.log_max_bytes != 0 && c.log_max_bytes < 4096) {
    return Status::InvalidArgument("setting 'log.max_bytes' must be 0 (no cap) or at least 4096");
  }
  return ValidateTls(c);
}

Status ApplyOverrides(Config* c,
                      const std::vector<std::pair<std::string, std::string>>& overrides) {
  for (const auto& [name, value] : overrides) {
    const Setting* s = FindSetting(name);
    if (s == nullptr) return Status::InvalidArgument("unknown setting '" + name + "'");
    Status st = SetFromText(c, *s, value);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>& LiveSettings() {
  static const std::vector<std::string> names = {
      "cluster.read_quorum",           "cluster.write_quorum",
      "limits.max_output_buffer_bytes", "limits.output_soft_limit_bytes",
      "limits.max_query_buffer_bytes",  "server.max_memory_bytes",
      "server.max_clients",            "cluster.keys_max"};
  return names;
}

Status SetLiveSetting(Config* config, const std::string& name, const std::string& value) {
  const auto& live = LiveSettings();
  const Setting* s = FindSetting(name);
  if (s == nullptr || std::find(live.begin(), live.end(), name) == live.end()) {
    return Status::InvalidArgument("setting '" + name.substr(0, 64) +
                                   "' cannot be changed on a running node (change the config "
                                   "file and restart)");
  }
  Config next = *config;
  Status st = SetFromText(&next, *s, value);
  if (st.ok()) st = Validate(next);
  if (!st.ok()) return st;
  // Only the one field is copied: other parts of the configuration may be referenced.
  if (const auto* is = std::get_if<IntSetting>(&s->kind)) {
    config->*(is->field) = next.*(is->field);
  } else if (const auto* ss = std::get_if<StringSetting>(&s->kind)) {
    config->*(ss->field) = next.*(ss->field);
  }
  return Status::Ok();
}

std::string Usage() {
  return "usage: itsukad [--config FILE] [options]\n"
         "  --config FILE         TOML configuration (see conf/itsuka.toml)\n"
         "  --port N              server.port\n"
         "  --bind ADDR           server.bind\n"
         "  --data-dir DIR        node.data_dir\n"
         "  --node-id ID          node.id\n"
         "  --requirepass PW      server.requirepass\n"
         "  --log-level L         log.level (debug|info|warn|error)\n"
         "  --log-file F          log.file\n"
         "  --tls-port N          tls.port (also --tls-cert-file, --tls-key-file,\n"
         "                        --tls-ca-cert-file, --tls-auth-clients, --tls-cluster)\n"
         "  --set NAME=VALUE      any setting, e.g. --set limits.max_args=1024\n"
         "  --check-config        validate the configuration and exit\n"
         "  --gen-secret FILE     create a cluster secret file (mode 0600) and exit;\n"
         "                        with --cluster-id HEX, for that existing cluster\n"
         "  --version, --help\n";
}

Result<CommandLine> ParseCommandLine(int argc, const char* const* argv) {
  static const std::pair<const char*, const char*> kShortcuts[] = {
      {"--port", "server.port"},         {"--bind", "server.bind"},
      {"--data-dir", "node.data_dir"},   {"--node-id", "node.id"},
      {"--requirepass", "server.requirepass"}, {"--log-level", "log.level"},
      {"--log-file", "log.file"},
      // redis-server's spelling of the TLS settings.
      {"--tls-port", "tls.port"},           {"--tls-cert-file", "tls.cert_file"},
      {"--tls-key-file", "tls.key_file"},   {"--tls-ca-cert-file", "tls.ca_cert_file"},
      {"--tls-auth-clients", "tls.auth_clients"}, {"--tls-cluster", "tls.peers"},
  };
  CommandLine cl;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&](std::string* out) -> bool {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string value;
    if (arg == "--help" || arg == "-h") {
      cl.help = true;
    } else if (arg == "--version") {
      cl.version = true;
    } else if (arg == "--check-config") {
      cl.check_config = true;
    } else if (arg == "--gen-secret") {
      if (!next(&cl.gen_secret_file)) return Status::InvalidArgument("--gen-secret needs a file name");
    } else if (arg == "--cluster-id") {
      if (!next(&cl.gen_cluster_id)) return Status::InvalidArgument("--cluster-id needs a value");
    } else if (arg == "--config" || arg == "-c") {
      if (!next(&cl.config_file)) return Status::InvalidArgument("--config needs a file name");
    } else if (arg == "--set") {
      if (!next(&value) || value.find('=') == std::string::npos) {
        return Status::InvalidArgument("--set needs NAME=VALUE");
      }
      size_t eq = value.find('=');
      cl.overrides.emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else {
      bool matched = false;
      for (const auto& [flag, setting] : kShortcuts) {
        if (arg == flag) {
          if (!next(&value)) return Status::InvalidArgument(arg + " needs a value");
          cl.overrides.emplace_back(setting, value);
          matched = true;
        }
      }
      if (!matched) return Status::InvalidArgument("unknown option '" + arg + "'");
    }
  }
  return cl;
}

Result<Config> ParseConfigText(const std::string& toml_text, const std::string& origin,
                               const std::vector<std::pair<std::string, std::string>>& overrides) {
  Config c;
  c.config_file = origin;
  toml::table doc;
  try {
    doc = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << origin << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return Status::InvalidArgument(msg.str());
  }
  for (const auto& [section, node] : doc) {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      return Status::InvalidArgument(origin + ": '" + std::string(section.str()) +
                                     "' must be a [section]");
    }
    for (const auto& [key, value] : *table) {
      std::string name = std::string(section.str()) + "." + std::string(key.str());
      const Setting* s = FindSetting(name);
      if (s == nullptr) return Status::InvalidArgument(origin + ": unknown setting '" + name + "'");
      Status st = SetFromToml(&c, *s, value);
      if (!st.ok()) return Status::InvalidArgument(origin + ": " + st.message());
    }
  }
  Status st = ApplyOverrides(&c, overrides);
  if (st.ok()) st = Validate(c);
  if (!st.ok()) return st;
  return c;
}

Result<Config> LoadConfig(const CommandLine& cmdline) {
  std::string text;
  if (!cmdline.config_file.empty()) {
    std::ifstream in(cmdline.config_file);
    if (!in) {
      return Status::InvalidArgument("cannot read config file '" + cmdline.config_file + "'");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  return ParseConfigText(text, cmdline.config_file.empty() ? "(defaults)" : cmdline.config_file,
                         cmdline.overrides);
}

Result<SeedAddress> ParseSeed(const std::string& text) {
  size_t at = text.find('@');
  size_t colon = text.rfind(':');
  if (at == std::string::npos || colon == std::string::npos || colon < at) {
    return Status::InvalidArgument("'" + text + "' is not id@host:port");
  }
  SeedAddress a;
  a.id = text.substr(0, at);
  a.host = text.substr(at + 1, colon - at - 1);
  std::string port = text.substr(colon + 1);
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
  if (!ValidNodeId(a.id) || a.host.empty() || ec != std::errc() ||
      p != port.data() + port.size() || a.port < 1 || a.port > 65535) {
    return Status::InvalidArgument("'" + text + "' is not id@host:port");
  }
  return a;
}

int64_t EffectivePeerPort(const Config& config) {
  // A TLS-only node (server.port 0) counts from its TLS port, as redis does.
  const int64_t base = config.port == 0 && config.tls_port != 0 ? config.tls_port : config.port;
  return config.peer_port != 0 ? config.peer_port : base + 10000;
}

std::vector<std::pair<std::string, std::string>> ListSettings(const Config& config) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Setting& s : Settings()) {
    std::string value;
    if (const auto* is = std::get_if<IntSetting>(&s.kind)) {
      value = std::to_string(config.*(is->field));
    } else if (const auto* ls = std::get_if<ListSetting>(&s.kind)) {
      for (const std::string& item : config.*(ls->field)) value += (value.empty() ? "" : ",") + item;
    } else {
      value = config.*(std::get<StringSetting>(s.kind).field);
      if (std::string_view(s.name) == "server.requirepass" && !value.empty()) value = "********";
    }
    out.emplace_back(s.name, value);
  }
  return out;
}

}  // namespace itsuka
