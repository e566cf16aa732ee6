// itsukad: one itsuka node.
#include <cstdio>

#include "common/log.h"
#include "itsuka/config.h"
#include "server/node.h"

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
  if (!InitLogging(level, config->log_file, &log_error)) {
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
