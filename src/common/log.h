// Minimal leveled logging for the shell (server, net, storage, tools).
//
// src/core never logs: it returns what happened as data. The sink and level are
// process-wide, set once at startup before other threads exist; LogLine is then safe
// to call from any thread (each line is written with one write(2)).
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace itsuka {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

// Parses "debug" | "info" | "warn" | "error". Returns false for anything else.
bool ParseLogLevel(std::string_view name, LogLevel* out);

// Sets the level and the destination (empty path: stderr). Returns false with a
// message in *error if the file cannot be opened.
bool InitLogging(LogLevel level, const std::string& path, std::string* error);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, std::string_view text);

namespace log_internal {
class Line {
 public:
  explicit Line(LogLevel level) : level_(level) {}
  ~Line() { LogLine(level_, out_.str()); }
  template <typename T>
  Line& operator<<(const T& v) {
    out_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream out_;
};
}  // namespace log_internal

}  // namespace itsuka

// A for-statement rather than if/else, so `if (x) LOG_INFO << ...;` nests safely.
#define ITSUKA_LOG(level)                                                              \
  for (bool itsuka_log_once = ::itsuka::LogEnabled(::itsuka::LogLevel::level);         \
       itsuka_log_once; itsuka_log_once = false)                                       \
  ::itsuka::log_internal::Line(::itsuka::LogLevel::level)

#define LOG_DEBUG ITSUKA_LOG(kDebug)
#define LOG_INFO ITSUKA_LOG(kInfo)
#define LOG_WARN ITSUKA_LOG(kWarn)
#define LOG_ERROR ITSUKA_LOG(kError)
