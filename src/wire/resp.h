// RESP2, the Redis client protocol: an incremental request parser and reply writers.
//
// The parser accepts multibulk requests (`*N\r\n$len\r\n...`) and inline commands
// (`SET k v\r\n`, with Redis-style quoting), any number pipelined in one buffer and
// split at any byte boundary. It enforces the limits it is given and reports a
// protocol error (after which the caller replies and closes the connection, as Redis
// does). Memory is bounded: the caller checks accounted() against its query-buffer
// limit after each Feed; accounted() counts what the parser really holds, including
// each parsed argument's string object and heap block, so a command of a million
// one-byte arguments is charged for tens of megabytes, not one.
//
// Thread-compatible: one parser per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace itsuka::wire {

struct RespLimits {
  size_t max_bulk_bytes = 16u << 20;
  size_t max_args = 1u << 20;
  size_t max_inline_bytes = 64u << 10;
};

class RespParser {
 public:
  enum class Outcome { kNeedMore, kCommand, kError };

  explicit RespParser(RespLimits limits = {}) : limits_(limits) {}

  // New limits apply from the next header parsed (used when a client authenticates).
  void set_limits(const RespLimits& limits) { limits_ = limits; }

  // Appends received bytes.
  void Feed(std::string_view data);

  // Extracts the next complete command into *args (replacing its contents).
  // kNeedMore: no complete command buffered yet. kError: the input is malformed;
  // error() says why and the parser must not be used again.
  Outcome Next(std::vector<std::string>* args);

  const std::string& error() const { return error_; }
  // Bytes received but not yet returned as commands, including the arguments already
  // parsed of an incomplete command (so one huge multibulk is bounded too).
  size_t buffered() const { return buf_.size() - pos_ + args_bytes_; }
  // Memory held for input: unparsed bytes, plus for the incomplete command its argument
  // vector's slots (capacity) and every argument's heap block (StringHeapBytes).
  size_t accounted() const {
    return buf_.size() - pos_ + args_.capacity() * sizeof(std::string) + args_heap_;
  }
  // The heap a std::string of `len` bytes allocates besides its own object: none while
  // the bytes fit inline (short-string optimisation), else the allocator's block for
  // len + 1 bytes (8 bytes of header, rounded up to 16, as glibc malloc does).
  static size_t StringHeapBytes(size_t len) {
    if (len < 16) return 0;
    return (len + 1 + 8 + 15) & ~size_t{15};
  }

 private:
  Outcome Fail(std::string msg);
  Outcome ParseInline(std::vector<std::string>* args);
  // Parses the decimal after buf_[pos_] up to the next CRLF. Returns 1 if done,
  // 0 if the line is incomplete, -1 if the line is not a number.
  int ParseCountLine(int64_t* value);

  RespLimits limits_;
  std::string buf_;
  size_t pos_ = 0;
  int64_t args_left_ = 0;  // > 0 while inside a multibulk request
  int64_t bulk_len_ = -1;  // >= 0 once a bulk header was read
  std::vector<std::string> args_;
  size_t args_bytes_ = 0;  // total size of args_
  size_t args_heap_ = 0;   // total StringHeapBytes of args_
  std::string error_;
};

// Splits an inline command line into arguments, honouring "double quotes" (with
// \n \r \t \b \a \\ \" \xHH escapes) and 'single quotes' as Redis does. Returns false
// for unbalanced quotes.
bool SplitInlineArgs(std::string_view line, std::vector<std::string>* args);

// Reply writers: append one RESP2 value to *out.
namespace resp {
void AppendSimple(std::string* out, std::string_view s);
// `s` starts with the error code, e.g. "ERR syntax error". CR/LF are replaced by spaces.
void AppendError(std::string* out, std::string_view s);
void AppendInteger(std::string* out, int64_t v);
void AppendBulk(std::string* out, std::string_view s);
void AppendNull(std::string* out);  // null bulk string: $-1
void AppendArrayHeader(std::string* out, size_t n);
}  // namespace resp

}  // namespace itsuka::wire
