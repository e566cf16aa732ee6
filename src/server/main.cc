// itsukad: one itsuka node.
#include <cstdio>
#include <filesystem>

#include "common/log.h"
#include "itsuka/config.h"
#include "server/node.h"
#include "server/peer_auth.h"

int main(int argc, char** argv) {
  using namespace itsuka;
  Result<CommandLine> cl = ParseCommandLine(argc, argv);
  if (!cl.ok()) {
    std::fprintf(stderr, "itsukad: %s\n%s", cl.status().message().c_str(), Usage().c_str());
    return 2;
  }
  if (cl->help) {
    std::fputs(Usage().c_str(), stdout);
    return 0;
  }
  if (cl->version) {
    std::puts("itsukad 0.1.0");
    return 0;
  }
  if (!cl->gen_secret_file.empty()) {
    std::string id;
    if (!cl->gen_cluster_id.empty() &&
        (!server::FromHex(cl->gen_cluster_id, &id) || id.size() != server::kClusterIdBytes)) {
      std::fprintf(stderr, "itsukad: --cluster-id must be %zu hex digits\n",
                   server::kClusterIdBytes * 2);
      return 2;
    }
    const std::filesystem::path parent = std::filesystem::path(cl->gen_secret_file).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    Result<server::ClusterSecret> s = server::GenerateSecret(id);
    Status st = s.ok() ? server::WriteSecretFile(cl->gen_secret_file, *s) : s.status();
    if (!st.ok()) {
      std::fprintf(stderr, "itsukad: %s\n", st.message().c_str());
      return 1;
    }
    std::printf("wrote %s (cluster id %s); give every member a copy (mode 0600)\n",
                cl->gen_secret_file.c_str(), server::ToHex(s->cluster_id).c_str());
    return 0;
  }
  Result<Config> config = LoadConfig(*cl);
  if (!config.ok()) {
    std::fprintf(stderr, "itsukad: bad configuration: %s\n", config.status().message().c_str());
    return 2;
  }
  if (cl->check_config) {
    std::printf("configuration OK\n");
    return 0;
  }
  LogLevel level = LogLevel::kInfo;
  ParseLogLevel(config->log_level, &level);
  std::string log_error;
  const LogFormat format = config->log_format == "json" ? LogFormat::kJson : LogFormat::kText;
  if (!InitLogging(level, config->log_file, &log_error, format, config->log_max_bytes)) {
    std::fprintf(stderr, "itsukad: setting 'log.file': %s\n", log_error.c_str());
    return 2;
  }
  Result<std::unique_ptr<server::Node>> node = server::Node::Create(*config);
  if (!node.ok()) {
    std::fprintf(stderr, "itsukad: cannot start: %s\n", node.status().message().c_str());
    LOG_ERROR << "cannot start: " << node.status().message();
    return 1;
  }
  return (*node)->Run();
}
