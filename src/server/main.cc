// itsukad: one itsuka node.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/log.h"
#include "itsuka/config.h"
#include "server/node.h"
#include "server/peer_auth.h"

namespace {

// --check-config's checks of the paths a node will open (LoadConfig checks the values
// alone): the data directory (or, if it does not exist yet, its nearest existing parent)
// and the log file's directory must be writable directories; the TLS files readable;
// the secret file what the node would load. "" if all pass, else the first problem.
std::string CheckPaths(const itsuka::Config& c) {
  namespace fs = std::filesystem;
  auto writable_dir = [](const std::string& setting, const std::string& path) -> std::string {
    fs::path p = fs::absolute(path);
    std::error_code ec;
    while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
    if (!fs::is_directory(p, ec)) {
      return "setting '" + setting + "': '" + p.string() + "' is not a directory";
    }
    if (::access(p.c_str(), W_OK | X_OK) != 0) {
      return "setting '" + setting + "': cannot create or write in '" + p.string() +
             "': " + std::strerror(errno);
    }
    return "";
  };
  if (std::string why = writable_dir("node.data_dir", c.data_dir); !why.empty()) return why;
  if (!c.log_file.empty()) {
    const fs::path parent = fs::absolute(c.log_file).parent_path();
    std::error_code ec;
    if (!fs::is_directory(parent, ec)) {
      return "setting 'log.file': directory '" + parent.string() + "' does not exist";
    }
    if (std::string why = writable_dir("log.file", parent.string()); !why.empty()) return why;
  }
  const std::pair<const char*, const std::string*> files[] = {
      {"tls.cert_file", &c.tls_cert_file},
      {"tls.key_file", &c.tls_key_file},
      {"tls.ca_cert_file", &c.tls_ca_cert_file}};
  for (const auto& [setting, path] : files) {
    if (path->empty()) continue;
    std::error_code ec;
    if (!fs::is_regular_file(*path, ec)) {
      return std::string("setting '") + setting + "': '" + *path + "' is not a file";
    }
    if (::access(path->c_str(), R_OK) != 0) {
      return std::string("setting '") + setting + "': cannot read '" + *path + "': " +
             std::strerror(errno);
    }
  }
  if (!c.secret_file.empty()) {
    itsuka::Result<itsuka::server::ClusterSecret> s = itsuka::server::LoadSecretFile(c.secret_file);
    if (!s.ok()) return s.status().message();
  }
  return "";
}

}  // namespace

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
    if (std::string why = CheckPaths(*config); !why.empty()) {
      std::fprintf(stderr, "itsukad: bad configuration: %s\n", why.c_str());
      return 2;
    }
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
