#include "wire/resp.h"

#include <gtest/gtest.h>

#include <random>

namespace itsuka::wire {
namespace {

using Args = std::vector<std::string>;
using Outcome = RespParser::Outcome;

// Feeds `input` in the given chunks and collects every command; stops at an error.
struct ParseResult {
  std::vector<Args> commands;
  std::string error;
};

ParseResult ParseChunks(const std::vector<std::string_view>& chunks, RespLimits limits = {}) {
  RespParser p(limits);
  ParseResult r;
  Args args;
  for (std::string_view c : chunks) {
    p.Feed(c);
    while (true) {
      Outcome o = p.Next(&args);
      if (o == Outcome::kNeedMore) break;
      if (o == Outcome::kError) {
        r.error = p.error();
        return r;
      }
      r.commands.push_back(args);
    }
  }
  return r;
}

ParseResult Parse(std::string_view input, RespLimits limits = {}) {
  return ParseChunks({input}, limits);
}

using namespace std::string_literals;
const std::string kPipeline =
    "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$8\r\nv\r\na\0lue\r\n"  // binary value with CRLF and NUL
    "PING\r\n"
    "*1\r\n$4\r\nPING\r\n"
    "\r\n"                                 // blank inline line: ignored
    "set  \"q u\\x41\\n\" 'it\\'s'\n"       // quotes, escapes, bare LF
    "*0\r\n"                               // empty multibulk: ignored
    "*2\r\n$3\r\nGET\r\n$0\r\n\r\n"s;      // empty argument

const std::vector<Args> kPipelineCommands = {
    {"SET", "key", std::string("v\r\na\0lue", 8)},
    {"PING"},
    {"PING"},
    {"set", "q uA\n", "it's"},
    {"GET", ""},
};

TEST(RespParser, ParsesPipelineInOneChunk) {
  std::string input(kPipeline.data(), kPipeline.size());
  ParseResult r = Parse(input);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.commands, kPipelineCommands);
}

TEST(RespParser, ParsesPipelineSplitAtEveryByteBoundary) {
  const std::string& in = kPipeline;
  for (size_t split = 0; split <= in.size(); ++split) {
    std::string_view v(in);
    ParseResult r = ParseChunks({v.substr(0, split), v.substr(split)});
    ASSERT_EQ(r.error, "") << "split at " << split;
    ASSERT_EQ(r.commands, kPipelineCommands) << "split at " << split;
  }
}

TEST(RespParser, ParsesPipelineFedOneByteAtATime) {
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < kPipeline.size(); ++i) chunks.push_back(std::string_view(kPipeline).substr(i, 1));
  ParseResult r = ParseChunks(chunks);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.commands, kPipelineCommands);
}

TEST(RespParser, ParsesPipelineInRandomChunks) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<std::string_view> chunks;
    std::string_view rest(kPipeline);
    while (!rest.empty()) {
      size_t n = std::uniform_int_distribution<size_t>(1, 9)(rng);
      n = std::min(n, rest.size());
      chunks.push_back(rest.substr(0, n));
      rest.remove_prefix(n);
    }
    ParseResult r = ParseChunks(chunks);
    ASSERT_EQ(r.commands, kPipelineCommands) << "round " << round;
  }
}

TEST(RespParser, NeedsMoreUntilTheLastByte) {
  RespParser p;
  Args args;
  std::string cmd = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  for (size_t i = 0; i + 1 < cmd.size(); ++i) {
    p.Feed(cmd.substr(i, 1));
    ASSERT_EQ(p.Next(&args), Outcome::kNeedMore) << i;
  }
  p.Feed(cmd.substr(cmd.size() - 1));
  ASSERT_EQ(p.Next(&args), Outcome::kCommand);
  EXPECT_EQ(args, (Args{"GET", "k"}));
  EXPECT_EQ(p.buffered(), 0u);
}

struct BadInput {
  const char* input;
  const char* error;
};

void PrintTo(const BadInput& b, std::ostream* os) { *os << b.error; }

class RespParserErrors : public ::testing::TestWithParam<BadInput> {};

TEST_P(RespParserErrors, RejectsWithClearError) {
  RespLimits limits;
  limits.max_args = 8;
  limits.max_bulk_bytes = 1000;
  limits.max_inline_bytes = 64;
  ParseResult r = Parse(GetParam().input, limits);
  EXPECT_EQ(r.error, std::string("Protocol error: ") + GetParam().error) << GetParam().input;
  EXPECT_TRUE(r.commands.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Garbage, RespParserErrors,
    ::testing::Values(
        BadInput{"*-5\r\n", "invalid multibulk length"},
        BadInput{"*-1\r\n", "invalid multibulk length"},
        BadInput{"*abc\r\n", "invalid multibulk length"},
        BadInput{"*1x\r\n", "invalid multibulk length"},
        BadInput{"*\r\n", "invalid multibulk length"},
        BadInput{"*9\r\n", "invalid multibulk length"},  // over max_args
        BadInput{"*99999999999999999999\r\n", "invalid multibulk length"},
        BadInput{"*1\r\n$99999999999\r\n", "invalid bulk length"},
        BadInput{"*1\r\n$1001\r\n", "invalid bulk length"},  // over max_bulk
        BadInput{"*1\r\n$-1\r\n", "invalid bulk length"},
        BadInput{"*1\r\n$x\r\n", "invalid bulk length"},
        BadInput{"*1\r\n+OK\r\n", "expected '$', got '+'"},
        BadInput{"*1\r\n$2\r\nabcd\r\n", "expected CRLF after bulk string"},
        BadInput{"*1\r\n\n", "expected '$', got '\n'"},
        BadInput{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP requests are not accepted on this port"},
        BadInput{"POST /x HTTP/1.0\r\n", "HTTP requests are not accepted on this port"},
        BadInput{"set \"abc\r\n", "unbalanced quotes in request"},
        BadInput{"set \"a\"b\r\n", "unbalanced quotes in request"},
        BadInput{"a b c d e f g h i\r\n", "invalid multibulk length"},
        BadInput{"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                 "too big inline request"}));

TEST(RespParser, CountLineWithoutCrlfIsBoundedNotBuffered) {
  RespParser p;
  Args args;
  p.Feed("*");
  p.Feed(std::string(70 * 1024, '1'));
  EXPECT_EQ(p.Next(&args), Outcome::kError);
  EXPECT_EQ(p.error(), "Protocol error: too big mbulk count string");
}

TEST(RespParser, ErrorIsSticky) {
  RespParser p;
  Args args;
  p.Feed("*x\r\n*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(p.Next(&args), Outcome::kError);
  EXPECT_EQ(p.Next(&args), Outcome::kError);
}

TEST(RespParser, NewLimitsApplyToNextHeader) {
  RespParser p(RespLimits{16, 2, 64});
  Args args;
  p.Feed("*3\r\n");
  EXPECT_EQ(p.Next(&args), Outcome::kError);
  RespParser q(RespLimits{16, 2, 64});
  q.Feed("*1\r\n$4\r\nAUTH\r\n");
  EXPECT_EQ(q.Next(&args), Outcome::kCommand);
  q.set_limits(RespLimits{1 << 20, 100, 64});
  q.Feed("*3\r\n$1\r\na\r\n$1\r\nb\r\n$20\r\n01234567890123456789\r\n");
  EXPECT_EQ(q.Next(&args), Outcome::kCommand);
  EXPECT_EQ(args.size(), 3u);
}

TEST(RespParser, LargeBulkArrivingInPieces) {
  RespParser p;
  Args args;
  std::string value(3 << 20, 'x');
  std::string cmd = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + std::to_string(value.size()) + "\r\n" +
                    value + "\r\n";
  for (size_t i = 0; i < cmd.size(); i += 65536) {
    EXPECT_EQ(p.Next(&args), Outcome::kNeedMore);
    p.Feed(std::string_view(cmd).substr(i, 65536));
  }
  ASSERT_EQ(p.Next(&args), Outcome::kCommand);
  EXPECT_EQ(args[2], value);
}

TEST(SplitInlineArgs, QuotingLikeRedis) {
  Args a;
  ASSERT_TRUE(SplitInlineArgs("  set k   v ", &a));
  EXPECT_EQ(a, (Args{"set", "k", "v"}));
  ASSERT_TRUE(SplitInlineArgs("\"\\x00\\xff\\t\" ''", &a));
  EXPECT_EQ(a, (Args{std::string("\0\xff\t", 3), ""}));
  EXPECT_FALSE(SplitInlineArgs("'abc", &a));
}

TEST(RespWriter, FormatsEveryType) {
  std::string out;
  resp::AppendSimple(&out, "OK");
  resp::AppendError(&out, "ERR bad\r\nthing");
  resp::AppendInteger(&out, -42);
  resp::AppendInteger(&out, 0);
  resp::AppendInteger(&out, INT64_MIN);
  resp::AppendBulk(&out, std::string("a\0b", 3));
  resp::AppendNull(&out);
  resp::AppendArrayHeader(&out, 2);
  using namespace std::string_literals;
  EXPECT_EQ(out, "+OK\r\n-ERR bad  thing\r\n:-42\r\n:0\r\n:-9223372036854775808\r\n"
                 "$3\r\na\0b\r\n$-1\r\n*2\r\n"s);
}

}  // namespace
}  // namespace itsuka::wire

namespace itsuka::wire {
namespace {
TEST(RespParser, BufferedCountsArgumentsOfAnIncompleteCommand) {
  RespParser p;
  Args args;
  p.Feed("*3\r\n$5\r\nhello\r\n$5\r\nworld\r\n");
  EXPECT_EQ(p.Next(&args), Outcome::kNeedMore);
  EXPECT_EQ(p.buffered(), 10u);
  p.Feed("$1\r\n!\r\n");
  EXPECT_EQ(p.Next(&args), Outcome::kCommand);
  EXPECT_EQ(p.buffered(), 0u);
}
}  // namespace
}  // namespace itsuka::wire
