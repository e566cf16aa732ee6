#include "itsuka/config.h"

#include <gtest/gtest.h>

#include <fstream>

namespace itsuka {
namespace {

TEST(Config, ShippedConfigFileIsValidAndMatchesDefaults) {
  CommandLine cl;
  cl.config_file = std::string(ITSUKA_SOURCE_DIR) + "/conf/itsuka.toml";
  Result<Config> c = LoadConfig(cl);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  Config defaults;
  // Every value in the documented file equals the compiled-in default.
  auto file = ListSettings(*c), builtin = ListSettings(defaults);
  EXPECT_EQ(file, builtin);
}

TEST(Config, ExampleClusterConfigsAreValid) {
  for (int i = 1; i <= 3; ++i) {
    CommandLine cl;
    cl.config_file = std::string(ITSUKA_SOURCE_DIR) + "/conf/cluster-3/node" + std::to_string(i) + ".toml";
    Result<Config> c = LoadConfig(cl);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->node_id, "node" + std::to_string(i));
    EXPECT_EQ(c->seeds.size(), 2u);
  }
}

TEST(Config, OverridesApplyAfterTheFile) {
  Result<Config> c = ParseConfigText("[server]\nport = 7005\n", "t.toml",
                                     {{"server.port", "7010"}, {"limits.max_args", "64"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->port, 7010);
  EXPECT_EQ(c->max_args, 64);
}

struct BadConfig {
  std::string text;
  std::vector<std::pair<std::string, std::string>> overrides;
  std::string must_mention;
};

void PrintTo(const BadConfig& c, std::ostream* os) { *os << c.must_mention; }

class ConfigErrors : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigErrors, NameTheSetting) {
  Result<Config> c = ParseConfigText(GetParam().text, "t.toml", GetParam().overrides);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(GetParam().must_mention), std::string::npos)
      << c.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigErrors,
    ::testing::Values(BadConfig{"[server]\nport = \"abc\"\n", {}, "server.port"},
                      BadConfig{"[server]\nbind = \"300.1.1.1\"\n", {}, "server.bind"},
                      BadConfig{"", {{"server.bind", "localhost"}}, "not an IPv4 or IPv6"},
                      BadConfig{"[server]\nport = 70000\n", {}, "server.port"},
                      BadConfig{"[server]\nprot = 1\n", {}, "server.prot"},
                      BadConfig{"[sever]\nport = 1\n", {}, "sever.port"},
                      BadConfig{"port = 1\n", {}, "port"},
                      BadConfig{"[storage]\ndurability = \"sometimes\"\n", {}, "storage.durability"},
                      BadConfig{"[node]\nid = \"a b\"\n", {}, "node.id"},
                      BadConfig{"[limits]\nmax_query_buffer_bytes = 2048\n", {}, "limits.max_query_buffer_bytes"},
                      BadConfig{"[server\n", {}, "t.toml:1"},
                      BadConfig{"", {{"server.port", "12x"}}, "server.port"},
                      BadConfig{"", {{"no.such", "1"}}, "no.such"},
                      BadConfig{"[cluster]\nseeds = [\"node2\"]\n", {}, "cluster.seeds"},
                      BadConfig{"[cluster]\nseeds = [\"node1@h:1\"]\n", {}, "cluster.seeds"},
                      BadConfig{"[cluster]\nseeds = \"node2@h:1\"\n", {}, "cluster.seeds"},
                      BadConfig{"[cluster]\nseeds = [\"node2@h:99999\"]\n", {}, "cluster.seeds"},
                      BadConfig{"[cluster]\nwrite_quorum = \"most\"\n", {}, "cluster.write_quorum"},
                      BadConfig{"[cluster]\nread_quorum = \"4\"\n", {}, "cluster.read_quorum"},
                      BadConfig{"[server]\nport = 60000\n[cluster]\nseeds = [\"b@h:1\"]\n", {},
                                "cluster.peer_port"},
                      BadConfig{"[handoff]\nmax_hint_age_s = 100\n[repair]\ntombstone_grace_s = 99\n",
                                {}, "repair.tombstone_grace_s"},
                      // Peer authentication.
                      BadConfig{"[cluster]\nseeds = [\"b@h:1\"]\n", {}, "cluster.secret_file"},
                      BadConfig{"[cluster]\nsecret_file = \"s\"\ninsecure_no_auth = true\n", {},
                                "cluster.insecure_no_auth"},
                      BadConfig{"[cluster]\ninsecure_no_auth = 2\n", {}, "cluster.insecure_no_auth"},
                      BadConfig{"[cluster]\ninsecure_no_auth = true\nid = \"abc\"\n", {}, "cluster.id"},
                      BadConfig{"[cluster]\nid = \"0123456789abcdef0123456789abcdef\"\n", {},
                                "insecure mode only"},
                      BadConfig{"", {{"cluster.max_peer_buffer_bytes", "1000"}}, "cluster.max_peer_buffer_bytes"},
                      BadConfig{"", {{"cluster.max_handshaking_peers", "0"}}, "cluster.max_handshaking_peers"},
                      // Client memory and AUTH limits (issue 11).
                      BadConfig{"[limits]\noutput_soft_limit_bytes = 100\n", {},
                                "limits.output_soft_limit_bytes"},
                      BadConfig{"[server]\nmax_memory_bytes = 1000\n", {}, "server.max_memory_bytes"},
                      BadConfig{"[server]\nmax_memory_bytes = -1\n", {}, "server.max_memory_bytes"},
                      BadConfig{"[limits]\nunauth_idle_timeout_s = -1\n", {}, "limits.unauth_idle_timeout_s"},
                      BadConfig{"[limits]\nauth_max_failures = 0\n", {}, "limits.auth_max_failures"},
                      BadConfig{"[limits]\nauth_failure_window_s = 0\n", {}, "limits.auth_failure_window_s"},
                      BadConfig{"[limits]\nauth_failure_delay_ms = 6000\n", {}, "limits.auth_failure_delay_ms"},
                      BadConfig{"[limits]\nmax_unauth_clients = 0\n", {}, "limits.max_unauth_clients"}));

TEST(Config, SeedsNeedASecretFileOrExplicitInsecureMode) {
  Result<Config> secure = ParseConfigText("[cluster]\nseeds = [\"b@h:1\"]\nsecret_file = \"/s\"\n",
                                          "t.toml", {});
  ASSERT_TRUE(secure.ok()) << secure.status().ToString();
  EXPECT_EQ(secure->secret_file, "/s");
  Result<Config> insecure = ParseConfigText(
      "[cluster]\nseeds = [\"b@h:1\"]\n", "t.toml",
      {{"cluster.insecure_no_auth", "true"}, {"cluster.id", "0123456789abcdef0123456789ABCDEF"}});
  ASSERT_TRUE(insecure.ok()) << insecure.status().ToString();
  EXPECT_EQ(insecure->insecure_no_auth, 1);
  // A node without seeds opens no peer port and needs neither.
  EXPECT_TRUE(ParseConfigText("", "t.toml", {}).ok());
}


TEST(Config, ClientMemoryLimitsHaveSafeDefaults) {
  Config d;
  EXPECT_EQ(d.max_memory_bytes, 1LL << 30);
  EXPECT_EQ(d.output_soft_limit_bytes, 8 << 20);
  EXPECT_LE(d.output_soft_limit_bytes, d.max_output_buffer_bytes);
  EXPECT_EQ(d.unauth_idle_timeout_s, 10);
  EXPECT_EQ(d.max_unauth_clients, 1000);
  Result<Config> u = ParseConfigText("[limits]\nmax_unauth_clients = 50\n", "t.toml", {});
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->max_unauth_clients, 50);
  Result<Config> c = ParseConfigText("[server]\nmax_memory_bytes = 0\n", "t.toml",
                                     {{"limits.output_soft_limit_bytes", "1048576"},
                                      {"limits.auth_max_failures", "3"}});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_memory_bytes, 0);  // 0 turns the ceiling off
  EXPECT_EQ(c->output_soft_limit_bytes, 1 << 20);
  EXPECT_EQ(c->auth_max_failures, 3);
}

TEST(CommandLine, ParsesFlagsAndRejectsUnknownOnes) {
  const char* argv[] = {"itsukad", "--config", "x.toml", "--port", "7002",
                        "--set", "limits.max_args=9", "--check-config"};
  Result<CommandLine> cl = ParseCommandLine(8, argv);
  ASSERT_TRUE(cl.ok());
  EXPECT_EQ(cl->config_file, "x.toml");
  EXPECT_TRUE(cl->check_config);
  ASSERT_EQ(cl->overrides.size(), 2u);
  EXPECT_EQ(cl->overrides[0], (std::pair<std::string, std::string>{"server.port", "7002"}));
  EXPECT_EQ(cl->overrides[1], (std::pair<std::string, std::string>{"limits.max_args", "9"}));
  const char* bad[] = {"itsukad", "--prot", "1"};
  EXPECT_FALSE(ParseCommandLine(3, bad).ok());
  const char* missing[] = {"itsukad", "--port"};
  EXPECT_FALSE(ParseCommandLine(2, missing).ok());
}

TEST(Config, MissingFileIsAClearError) {
  CommandLine cl;
  cl.config_file = "/nonexistent/itsuka.toml";
  Result<Config> c = LoadConfig(cl);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/nonexistent/itsuka.toml"), std::string::npos);
}

// ---- [tls] ----------------------------------------------------------------------------

TEST(TlsConfig, OffByDefaultAndParsedFromTheTlsSection) {
  Config defaults;
  EXPECT_EQ(defaults.tls_port, 0);
  EXPECT_EQ(defaults.tls_peers, 0);
  EXPECT_EQ(defaults.tls_auth_clients, "yes");  // as redis: client certificates required
  Result<Config> c = ParseConfigText(
      "[tls]\nport = 7101\ncert_file = \"n.crt\"\nkey_file = \"n.key\"\n"
      "ca_cert_file = \"ca.crt\"\nauth_clients = \"optional\"\npeers = true\n"
      "handshake_timeout_ms = 500\n",
      "t.toml", {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->tls_port, 7101);
  EXPECT_EQ(c->tls_cert_file, "n.crt");
  EXPECT_EQ(c->tls_key_file, "n.key");
  EXPECT_EQ(c->tls_ca_cert_file, "ca.crt");
  EXPECT_EQ(c->tls_auth_clients, "optional");
  EXPECT_EQ(c->tls_peers, 1);
  EXPECT_EQ(c->tls_handshake_timeout_ms, 500);
  bool listed = false;
  for (const auto& [name, value] : ListSettings(*c)) listed = listed || (name == "tls.port" && value == "7101");
  EXPECT_TRUE(listed);
}

TEST(TlsConfig, RedisServerFlagsMapOntoTheSettings) {
  const char* argv[] = {"itsukad", "--tls-port", "7101", "--tls-cert-file", "n.crt",
                        "--tls-key-file", "n.key", "--tls-ca-cert-file", "ca.crt",
                        "--tls-auth-clients", "no", "--tls-cluster", "yes", "--port", "0"};
  Result<CommandLine> cl = ParseCommandLine(15, argv);
  ASSERT_TRUE(cl.ok()) << cl.status().ToString();
  Result<Config> c = ParseConfigText("", "(defaults)", cl->overrides);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->tls_port, 7101);
  EXPECT_EQ(c->tls_cert_file, "n.crt");
  EXPECT_EQ(c->tls_key_file, "n.key");
  EXPECT_EQ(c->tls_ca_cert_file, "ca.crt");
  EXPECT_EQ(c->tls_auth_clients, "no");
  EXPECT_EQ(c->tls_peers, 1);
  // TLS only (server.port 0): the peer port counts from the TLS port, as redis does.
  EXPECT_EQ(c->port, 0);
  EXPECT_EQ(EffectivePeerPort(*c), 17101);
}

TEST(TlsConfig, IncompleteOrConflictingSettingsAreRefused) {
  const std::vector<std::pair<std::string, std::string>> files = {
      {"tls.cert_file", "n.crt"}, {"tls.key_file", "n.key"}, {"tls.ca_cert_file", "ca.crt"}};
  auto error = [&](std::vector<std::pair<std::string, std::string>> overrides, size_t drop_file) {
    for (size_t i = 0; i < files.size(); ++i) {
      if (i != drop_file) overrides.push_back(files[i]);
    }
    Result<Config> c = ParseConfigText("", "(defaults)", overrides);
    return c.ok() ? std::string("(valid)") : c.status().message();
  };
  const size_t kNone = 99;
  EXPECT_EQ(error({{"tls.port", "7101"}}, kNone), "(valid)");
  EXPECT_NE(error({{"tls.port", "7101"}}, 0).find("setting 'tls.cert_file' is empty: tls.port needs"),
            std::string::npos);
  EXPECT_NE(error({{"tls.peers", "true"}}, 1).find("setting 'tls.key_file' is empty: tls.peers needs"),
            std::string::npos);
  EXPECT_NE(error({{"tls.port", "7101"}}, 2).find("setting 'tls.ca_cert_file' is empty"), std::string::npos);
  EXPECT_NE(error({{"tls.peers", "1"}}, 2).find("tls.peers verifies peers"), std::string::npos);
  // No client certificates asked for and no TLS peers: no CA needed.
  EXPECT_EQ(error({{"tls.port", "7101"}, {"tls.auth_clients", "no"}}, 2), "(valid)");
  EXPECT_NE(error({{"tls.port", "7001"}}, kNone).find("'tls.port': 7001 is server.port too"), std::string::npos);
  EXPECT_NE(error({{"tls.port", "7101"}, {"cluster.peer_port", "7101"}, {"cluster.seeds", "b@127.0.0.1:7102"},
                   {"cluster.insecure_no_auth", "true"}},
                  kNone).find("is the peer port too"), std::string::npos);
  EXPECT_NE(error({{"tls.auth_clients", "maybe"}}, kNone).find("'maybe' is not one of: yes, no, optional"),
            std::string::npos);
  EXPECT_NE(error({{"tls.port", "70000"}}, kNone).find("'tls.port': 70000 is out of range"), std::string::npos);
  EXPECT_NE(error({{"tls.peers", "perhaps"}}, kNone).find("must be true, false, yes, no, 1 or 0"),
            std::string::npos);
  // The files are not read while parsing: that is the node's start (TlsContext::Create).
  EXPECT_EQ(error({{"tls.port", "7101"}, {"tls.cert_file", "/nonexistent.crt"}}, kNone), "(valid)");
}

}  // namespace
}  // namespace itsuka

namespace itsuka {
namespace {

TEST(ConfigClockOffset, MaxClockOffsetParsesAndIsBounded) {
  Result<Config> d = ParseConfigText("", "t.toml", {});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->max_clock_offset_ms, 500);
  Result<Config> c = ParseConfigText("[cluster]\nmax_clock_offset_ms = 250\n", "t.toml", {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_clock_offset_ms, 250);
  Result<Config> bad = ParseConfigText("[cluster]\nmax_clock_offset_ms = -1\n", "t.toml", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("cluster.max_clock_offset_ms"), std::string::npos);
  bool listed = false;
  for (const auto& [name, value] : ListSettings(*c)) {
    listed = listed || (name == "cluster.max_clock_offset_ms" && value == "250");
  }
  EXPECT_TRUE(listed);
}

}  // namespace
}  // namespace itsuka

namespace itsuka {
namespace {

TEST(Config, AllowWalCorruptionIsOffByDefaultAndTakesZeroOrOne) {
  EXPECT_EQ(Config().allow_wal_corruption, 0);
  Result<Config> on = ParseConfigText("", "t.toml", {{"storage.allow_wal_corruption", "1"}});
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_EQ(on->allow_wal_corruption, 1);
  Result<Config> file = ParseConfigText("[storage]\nallow_wal_corruption = 1\n", "t.toml", {});
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->allow_wal_corruption, 1);
  EXPECT_FALSE(ParseConfigText("", "t.toml", {{"storage.allow_wal_corruption", "2"}}).ok());
}

TEST(Config, MinFreeMbDefaultsTo256AndZeroTurnsItOff) {
  EXPECT_EQ(Config().min_free_mb, 256);
  Result<Config> off = ParseConfigText("[storage]\nmin_free_mb = 0\n", "t.toml", {});
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_EQ(off->min_free_mb, 0);
  EXPECT_FALSE(ParseConfigText("", "t.toml", {{"storage.min_free_mb", "-1"}}).ok());
}

TEST(Config, LiveSettingsChangeOnlyTheirFieldAndAreChecked) {
  Config c;
  ASSERT_TRUE(SetLiveSetting(&c, "cluster.write_quorum", "all").ok());
  EXPECT_EQ(c.write_quorum, "all");
  ASSERT_TRUE(SetLiveSetting(&c, "server.max_memory_bytes", "2097152").ok());
  EXPECT_EQ(c.max_memory_bytes, 2097152);
  const Config before = c;
  EXPECT_FALSE(SetLiveSetting(&c, "server.max_memory_bytes", "5").ok());  // Validate's rule
  EXPECT_FALSE(SetLiveSetting(&c, "limits.max_query_buffer_bytes", "1024").ok());  // < max_bulk
  EXPECT_FALSE(SetLiveSetting(&c, "cluster.read_quorum", "most").ok());
  EXPECT_FALSE(SetLiveSetting(&c, "server.port", "7000").ok());  // not live
  EXPECT_FALSE(SetLiveSetting(&c, "no.such", "1").ok());
  EXPECT_EQ(c.max_memory_bytes, before.max_memory_bytes);
  EXPECT_EQ(c.read_quorum, before.read_quorum);
  EXPECT_EQ(c.port, before.port);
  for (const std::string& name : LiveSettings()) {
    bool listed = false;
    for (const auto& [n, v] : ListSettings(c)) listed = listed || n == name;
    EXPECT_TRUE(listed) << name;
  }
}

}  // namespace
}  // namespace itsuka
