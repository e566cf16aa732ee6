// libFuzzer target for the RESP parser. Besides "no crash, no sanitizer report", it
// checks a differential property: parsing the input in one piece and split into
// chunks (sizes taken from the input) yields the same commands and the same error.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "wire/resp.h"

namespace {

using itsuka::wire::RespLimits;
using itsuka::wire::RespParser;

struct Parsed {
  std::vector<std::vector<std::string>> commands;
  std::string error;
};

Parsed Run(std::string_view data, size_t chunk) {
  RespParser p(RespLimits{4096, 64, 1024});
  Parsed out;
  std::vector<std::string> args;
  for (size_t i = 0; i < data.size(); i += chunk) {
    p.Feed(data.substr(i, chunk));
    while (true) {
      RespParser::Outcome o = p.Next(&args);
      if (o == RespParser::Outcome::kNeedMore) break;
      if (o == RespParser::Outcome::kError) {
        out.error = p.error();
        return out;
      }
      out.commands.push_back(args);
    }
    // Bounded memory: never more buffered than was fed.
    if (p.buffered() > data.size()) std::abort();
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = 1 + data[0] % 17;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  Parsed whole = Run(input, input.size() + 1);
  Parsed pieces = Run(input, chunk);
  if (whole.commands != pieces.commands || whole.error != pieces.error) std::abort();
  return 0;
}
