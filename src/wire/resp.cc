#include "wire/resp.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace itsuka::wire {
namespace {

// A count line ("*N" / "$N") longer than this is an error, not a reason to buffer.
constexpr size_t kMaxCountLine = 64 << 10;

bool IsHttpLine(const std::vector<std::string>& args) {
  if (args.empty()) return false;
  auto iequals = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(a[i])) !=
          std::tolower(static_cast<unsigned char>(b[i]))) {
        return false;
      }
    }
    return true;
  };
  // Redis treats POST and Host: as an attack (a browser talking to the port); so do we,
  // and also any request line that ends in an HTTP version.
  if (iequals(args[0], "POST") || iequals(args[0], "Host:")) return true;
  const std::string& last = args.back();
  return args.size() >= 3 && last.size() == 8 && iequals(last.substr(0, 5), "HTTP/");
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void RespParser::Feed(std::string_view data) {
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= 4096)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  // Give back the room a large request needed once it has been consumed.
  if (buf_.capacity() > (1u << 20) && buf_.size() - pos_ < buf_.capacity() / 4) {
    buf_.erase(0, pos_);
    pos_ = 0;
    buf_.shrink_to_fit();
  }
  buf_.append(data.data(), data.size());
}

RespParser::Outcome RespParser::Fail(std::string msg) {
  error_ = "Protocol error: " + std::move(msg);
  args_left_ = 0;
  return Outcome::kError;
}

int RespParser::ParseCountLine(int64_t* value) {
  const char* start = buf_.data() + pos_ + 1;
  const char* end = buf_.data() + buf_.size();
  const char* cr = static_cast<const char*>(std::memchr(start, '\r', end - start));
  if (cr == nullptr || cr + 1 >= end) return 0;
  if (cr[1] != '\n') return -1;
  const char* p = start;
  bool negative = false;
  if (p < cr && *p == '-') {
    negative = true;
    ++p;
  }
  if (p == cr || cr - p > 18) return -1;  // 18 digits cannot overflow int64
  int64_t v = 0;
  for (; p < cr; ++p) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
  }
  *value = negative ? -v : v;
  pos_ = static_cast<size_t>(cr + 2 - buf_.data());
  return 1;
}

RespParser::Outcome RespParser::Next(std::vector<std::string>* args) {
  if (!error_.empty()) return Outcome::kError;
  while (pos_ < buf_.size()) {
    if (args_left_ == 0) {
      if (buf_[pos_] != '*') {
        Outcome o = ParseInline(args);
        if (o == Outcome::kCommand && args->empty()) continue;  // blank line
        return o;
      }
      int64_t n = 0;
      int r = ParseCountLine(&n);
      if (r == 0) {
        if (buf_.size() - pos_ > kMaxCountLine) return Fail("too big mbulk count string");
        return Outcome::kNeedMore;
      }
      if (r < 0 || n < 0 || static_cast<uint64_t>(n) > limits_.max_args) {
        return Fail("invalid multibulk length");
      }
      if (n == 0) continue;  // "*0": an empty request, ignored as Redis does
      args_left_ = n;
      args_.clear();
      args_.reserve(static_cast<size_t>(std::min<int64_t>(n, 1024)));
      bulk_len_ = -1;
      continue;  // the first bulk header may not have arrived yet
    }
    if (bulk_len_ < 0) {
      if (buf_[pos_] != '$') {
        return Fail(std::string("expected '$', got '") + buf_[pos_] + "'");
      }
      int64_t n = 0;
      int r = ParseCountLine(&n);
      if (r == 0) {
        if (buf_.size() - pos_ > kMaxCountLine) return Fail("too big bulk count string");
        return Outcome::kNeedMore;
      }
      if (r < 0 || n < 0 || static_cast<uint64_t>(n) > limits_.max_bulk_bytes) {
        return Fail("invalid bulk length");
      }
      bulk_len_ = n;
      // No room is reserved for the bulk before it arrives: the buffer grows with what
      // arrived (geometrically, so at most twice what the client is charged for). A
      // reservation of up to 1 MiB per header let 2,000 connections each sending a
      // 40-byte header hold 2 GB of heap while their input was charged 6 MB.
    }
    if (buf_.size() - pos_ < static_cast<size_t>(bulk_len_) + 2) return Outcome::kNeedMore;
    const char* data = buf_.data() + pos_;
    if (data[bulk_len_] != '\r' || data[bulk_len_ + 1] != '\n') {
      return Fail("expected CRLF after bulk string");
    }
    args_.emplace_back(data, static_cast<size_t>(bulk_len_));
    args_bytes_ += static_cast<size_t>(bulk_len_);
    args_heap_ += StringHeapBytes(static_cast<size_t>(bulk_len_));
    pos_ += static_cast<size_t>(bulk_len_) + 2;
    bulk_len_ = -1;
    if (--args_left_ == 0) {
      args->swap(args_);
      args_.clear();
      // Keep a normal command's slots; drop those of a huge one (they are charged to
      // the client while held).
      if (args_.capacity() > 1024) std::vector<std::string>().swap(args_);
      args_bytes_ = 0;
      args_heap_ = 0;
      return Outcome::kCommand;
    }
  }
  return Outcome::kNeedMore;
}

RespParser::Outcome RespParser::ParseInline(std::vector<std::string>* args) {
  const char* start = buf_.data() + pos_;
  size_t avail = buf_.size() - pos_;
  const char* nl = static_cast<const char*>(std::memchr(start, '\n', avail));
  if (nl == nullptr) {
    if (avail > limits_.max_inline_bytes) return Fail("too big inline request");
    return Outcome::kNeedMore;
  }
  size_t len = static_cast<size_t>(nl - start);
  if (len > limits_.max_inline_bytes) return Fail("too big inline request");
  std::string_view line(start, len);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos_ += len + 1;
  if (!SplitInlineArgs(line, args)) return Fail("unbalanced quotes in request");
  if (args->size() > limits_.max_args) return Fail("invalid multibulk length");
  for (const std::string& a : *args) {
    if (a.size() > limits_.max_bulk_bytes) return Fail("invalid bulk length");
  }
  if (IsHttpLine(*args)) return Fail("HTTP requests are not accepted on this port");
  return Outcome::kCommand;
}

bool SplitInlineArgs(std::string_view line, std::vector<std::string>* args) {
  args->clear();
  size_t i = 0;
  const size_t n = line.size();
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (true) {
    while (i < n && is_space(line[i])) ++i;
    if (i == n) return true;
    std::string cur;
    char quote = 0;
    bool done = false;
    while (!done) {
      if (quote == '"') {
        if (i == n) return false;
        if (line[i] == '\\' && i + 3 < n && line[i + 1] == 'x' && HexValue(line[i + 2]) >= 0 &&
            HexValue(line[i + 3]) >= 0) {
          cur.push_back(static_cast<char>(HexValue(line[i + 2]) * 16 + HexValue(line[i + 3])));
          i += 4;
        } else if (line[i] == '\\' && i + 1 < n) {
          char c = line[i + 1];
          switch (c) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'b': c = '\b'; break;
            case 'a': c = '\a'; break;
            default: break;
          }
          cur.push_back(c);
          i += 2;
        } else if (line[i] == '"') {
          // A closing quote must be followed by a space or the end.
          if (i + 1 < n && !is_space(line[i + 1])) return false;
          ++i;
          done = true;
        } else {
          cur.push_back(line[i++]);
        }
      } else if (quote == '\'') {
        if (i == n) return false;
        if (line[i] == '\\' && i + 1 < n && line[i + 1] == '\'') {
          cur.push_back('\'');
          i += 2;
        } else if (line[i] == '\'') {
          if (i + 1 < n && !is_space(line[i + 1])) return false;
          ++i;
          done = true;
        } else {
          cur.push_back(line[i++]);
        }
      } else {
        if (i == n || is_space(line[i])) {
          done = true;
        } else if (line[i] == '"' || line[i] == '\'') {
          quote = line[i++];
        } else {
          cur.push_back(line[i++]);
        }
      }
    }
    args->push_back(std::move(cur));
  }
}

namespace resp {

void AppendSimple(std::string* out, std::string_view s) {
  out->push_back('+');
  out->append(s);
  out->append("\r\n");
}

void AppendError(std::string* out, std::string_view s) {
  out->push_back('-');
  size_t start = out->size();
  out->append(s);
  for (size_t i = start; i < out->size(); ++i) {
    if ((*out)[i] == '\r' || (*out)[i] == '\n') (*out)[i] = ' ';
  }
  out->append("\r\n");
}

namespace {
void AppendPrefixed(std::string* out, char prefix, int64_t v) {
  char tmp[24];
  tmp[0] = prefix;
  int n = 1;
  uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  char digits[21];
  int d = 0;
  do {
    digits[d++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) tmp[n++] = '-';
  while (d) tmp[n++] = digits[--d];
  tmp[n++] = '\r';
  tmp[n++] = '\n';
  out->append(tmp, static_cast<size_t>(n));
}
}  // namespace

void AppendInteger(std::string* out, int64_t v) { AppendPrefixed(out, ':', v); }

void AppendBulk(std::string* out, std::string_view s) {
  AppendPrefixed(out, '$', static_cast<int64_t>(s.size()));
  out->append(s);
  out->append("\r\n");
}

void AppendNull(std::string* out) { out->append("$-1\r\n"); }

void AppendArrayHeader(std::string* out, size_t n) {
  AppendPrefixed(out, '*', static_cast<int64_t>(n));
}

}  // namespace resp
}  // namespace itsuka::wire
