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
                                {}, "repair.tombstone_grace_s"}));

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

}  // namespace
}  // namespace itsuka
