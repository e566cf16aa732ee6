// Minimal leveled logging for the shell (server, net, storage, tools).
//
// src/core never logs: it returns what happened as data. The sink, level and format
// are process-wide, set once at startup before other threads exist; LogLine is then
// safe to call from any thread (each line is written with one write(2)).
//
// A log file (issue 14) can be reopened in place (ReopenLog, on SIGHUP: logrotate's
// "move, then signal" works) and capped: past max_bytes the file is renamed to
// <file>.1 (replacing an older one) and a new one started, so the log never holds
// more than about twice the cap. Reopening and rotating replace the descriptor with
// dup2, so a line written meanwhile from another thread goes to the old or the new
// file, never to a closed descriptor.
//
// Formats: text ("2026-12-01T19:55:03.510Z INFO  text", control bytes as \xNN) or
// JSON lines ({"ts":"...","level":"info","msg":"..."}; bytes that are not printable
// ASCII are escaped \u00NN, so every line is valid JSON whatever a stranger sent).
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace itsuka {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };
enum class LogFormat { kText = 0, kJson };

// Parses "debug" | "info" | "warn" | "error". Returns false for anything else.
bool ParseLogLevel(std::string_view name, LogLevel* out);

// Sets the level and the destination (empty path: stderr). Returns false with a
// message in *error if the file cannot be opened. max_bytes 0: no size cap.
bool InitLogging(LogLevel level, const std::string& path, std::string* error,
                 LogFormat format = LogFormat::kText, int64_t max_bytes = 0);
// Reopens the log file at its path (after logrotate moved it). False with *error if
// it cannot be opened (logging goes on to the old file). No-op for stderr.
bool ReopenLog(std::string* error);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, std::string_view text);
// The line LogLine writes, without the newline (exposed for tests).
std::string FormatLogLine(LogFormat format, LogLevel level, int64_t wall_ms, std::string_view text);

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
