#include "common/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace itsuka {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_fd{2};
LogFormat g_format = LogFormat::kText;  // set before other threads exist
std::string g_path;                     // "" for stderr
int64_t g_max_bytes = 0;
std::atomic<int64_t> g_written{0};  // bytes in the current file (for the cap)
std::mutex g_rotate_mu;              // one reopen or rotation at a time

const char* LevelTag(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO ";
    case LogLevel::kWarn: return "WARN ";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "?";
}

constexpr char kHex[] = "0123456789abcdef";

// Opens the path for appending; its current size goes to *size.
int OpenLogFile(const std::string& path, int64_t* size, std::string* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot open log file '" + path + "': " + std::strerror(errno);
    return -1;
  }
  struct stat st {};
  *size = ::fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
  return fd;
}

// Points the log descriptor at a fresh open of g_path. REQUIRES: g_rotate_mu held.
bool ReopenLocked(std::string* error) {
  int64_t size = 0;
  int fd = OpenLogFile(g_path, &size, error);
  if (fd < 0) return false;
  ::dup2(fd, g_fd.load());
  ::close(fd);
  g_written = size;
  return true;
}

// Past the cap: <file> becomes <file>.1 and a new file starts.
void MaybeRotate() {
  if (g_max_bytes <= 0 || g_path.empty() || g_written.load() < g_max_bytes) return;
  std::lock_guard<std::mutex> lock(g_rotate_mu);
  if (g_written.load() < g_max_bytes) return;  // another thread rotated
  const std::string old = g_path + ".1";
  std::string error;
  if (::rename(g_path.c_str(), old.c_str()) != 0 || !ReopenLocked(&error)) {
    g_written = 0;  // keep writing where we are rather than retrying every line
  }
}
}  // namespace

bool ParseLogLevel(std::string_view name, LogLevel* out) {
  if (name == "debug") *out = LogLevel::kDebug;
  else if (name == "info") *out = LogLevel::kInfo;
  else if (name == "warn") *out = LogLevel::kWarn;
  else if (name == "error") *out = LogLevel::kError;
  else return false;
  return true;
}

bool InitLogging(LogLevel level, const std::string& path, std::string* error, LogFormat format,
                 int64_t max_bytes) {
  g_level = static_cast<int>(level);
  g_format = format;
  g_max_bytes = max_bytes;
  if (path.empty()) return true;
  int64_t size = 0;
  int fd = OpenLogFile(path, &size, error);
  if (fd < 0) return false;
  g_path = path;
  g_written = size;
  g_fd = fd;
  return true;
}

bool ReopenLog(std::string* error) {
  if (g_path.empty()) return true;
  std::lock_guard<std::mutex> lock(g_rotate_mu);
  return ReopenLocked(error);
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

std::string FormatLogLine(LogFormat format, LogLevel level, int64_t wall_ms,
                          std::string_view text) {
  const time_t secs = static_cast<time_t>(wall_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char ts[40];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(wall_ms % 1000));
  std::string line;
  line.reserve(text.size() + 64);
  if (format == LogFormat::kJson) {
    line = std::string("{\"ts\":\"") + ts + "\",\"level\":\"" + LevelName(level) + "\",\"msg\":\"";
    for (unsigned char c : text) {
      if (c == '"' || c == '\\') {
        line.push_back('\\');
        line.push_back(static_cast<char>(c));
      } else if (c < 0x20 || c >= 0x7f) {
        line += "\\u00";
        line.push_back(kHex[c >> 4]);
        line.push_back(kHex[c & 15]);
      } else {
        line.push_back(static_cast<char>(c));
      }
    }
    line += "\"}";
    return line;
  }
  line = std::string(ts) + " " + LevelTag(level) + " ";
  // Lines quote what strangers send (node ids, cluster names, refusal reasons): control
  // bytes are written as \xNN, so no one can forge a log line or a terminal escape.
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      line += "\\x";
      line.push_back(kHex[c >> 4]);
      line.push_back(kHex[c & 15]);
    } else {
      line.push_back(static_cast<char>(c));
    }
  }
  return line;
}

void LogLine(LogLevel level, std::string_view text) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t wall_ms = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  std::string line = FormatLogLine(g_format, level, wall_ms, text);
  line.push_back('\n');
  MaybeRotate();
  ssize_t n = ::write(g_fd.load(), line.data(), line.size());
  if (n > 0) g_written += n;
}

}  // namespace itsuka
