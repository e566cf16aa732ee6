#include "server/client_limits.h"

#include <gtest/gtest.h>

#include "wire/resp.h"

namespace itsuka::server {
namespace {

TEST(ClientLimits, ParserChargesPerArgumentOverhead) {
  wire::RespParser p;
  // A command of 100,000 one-byte arguments, not yet complete: the bytes alone are
  // 100 kB, but every argument holds a std::string slot.
  std::string in = "*200000\r\n";
  for (int i = 0; i < 100000; ++i) in += "$1\r\na\r\n";
  p.Feed(in);
  std::vector<std::string> args;
  EXPECT_EQ(p.Next(&args), wire::RespParser::Outcome::kNeedMore);
  EXPECT_EQ(p.buffered(), 100000u);
  EXPECT_GE(p.accounted(), 100000u * sizeof(std::string));
}

TEST(ClientLimits, ParserChargesHeapBlocksOfLongArguments) {
  wire::RespParser p;
  std::string arg(100, 'x');
  p.Feed("*3\r\n$100\r\n" + arg + "\r\n");
  std::vector<std::string> args;
  EXPECT_EQ(p.Next(&args), wire::RespParser::Outcome::kNeedMore);
  EXPECT_GE(p.accounted(), 100u + 1 + sizeof(std::string));
  // Complete: the arguments move out and are no longer the parser's.
  p.Feed("$1\r\na\r\n$1\r\nb\r\n");
  EXPECT_EQ(p.Next(&args), wire::RespParser::Outcome::kCommand);
  EXPECT_EQ(args.size(), 3u);
  EXPECT_LT(p.accounted(), 1024u * sizeof(std::string) + 1);
}

TEST(ClientLimits, StringHeapBytes) {
  EXPECT_EQ(wire::RespParser::StringHeapBytes(0), 0u);
  EXPECT_EQ(wire::RespParser::StringHeapBytes(15), 0u);   // inline (SSO)
  EXPECT_GE(wire::RespParser::StringHeapBytes(16), 17u);
  EXPECT_EQ(wire::RespParser::StringHeapBytes(16) % 16, 0u);
  EXPECT_GE(wire::RespParser::StringHeapBytes(1 << 20), (1u << 20) + 1);
}

TEST(ClientLimits, ResultBytesCountsValues) {
  core::ClientResult r;
  EXPECT_LT(ResultBytes(r), 1024u);
  core::Sibling s;
  s.value.assign(1 << 20, 'v');
  r.object.siblings.push_back(s);
  r.object.siblings.push_back(s);
  EXPECT_GE(ResultBytes(r), 2u << 20);
  EXPECT_LT(ResultBytes(r), (2u << 20) + 4096);
}

TEST(ClientLimits, WriteSpecBytesCountsKeyAndValue) {
  core::WriteSpec spec;
  spec.version.value.assign(5000, 'v');
  EXPECT_GE(WriteSpecBytes(std::string(1000, 'k'), spec), 6000u);
}

TEST(ClientLimits, ReadEstimateJumpsUpAndDecaysSlowly) {
  ReadEstimate e;
  EXPECT_EQ(e.value(), ReadEstimate::kInitial);
  for (int i = 0; i < 1000; ++i) e.Observe(10);
  EXPECT_EQ(e.value(), ReadEstimate::kFloor);
  e.Observe(1 << 20);
  EXPECT_EQ(e.value(), 1u << 20);
  e.Observe(10);
  EXPECT_GT(e.value(), (1u << 20) * 9 / 10);  // one small value does not undo a large one
  for (int i = 0; i < 1000; ++i) e.Observe(10);
  EXPECT_EQ(e.value(), ReadEstimate::kFloor);
}

TEST(ClientLimits, MayStart) {
  const size_t soft = 8 << 20;
  // Nothing in flight: always, so a command makes progress.
  EXPECT_TRUE(MayStart(0, 64, 100u << 20, 1 << 20, soft));
  // Small values: up to the in-flight cap.
  EXPECT_TRUE(MayStart(63, 64, 63 * 256, 256, soft));
  EXPECT_FALSE(MayStart(64, 64, 64 * 256, 256, soft));
  // 1 MiB values: only as many as fit in the soft limit.
  EXPECT_TRUE(MayStart(7, 64, 7u << 20, 1 << 20, soft));
  EXPECT_FALSE(MayStart(8, 64, 8u << 20, 1 << 20, soft));
  // One large local value already charged stops the next read, whatever the estimate.
  EXPECT_FALSE(MayStart(1, 64, 32u << 20, 256, soft));
  // Writes bring no values: only the cap and the output already pending matter.
  EXPECT_TRUE(MayStart(10, 64, soft, 0, soft));
  EXPECT_FALSE(MayStart(10, 64, soft + 1, 0, soft));
}

TEST(ClientLimits, AuthLimiterDelaysPerConnection) {
  AuthLimiter l(AuthLimits{100, 60000, 100, 5000, 16});
  EXPECT_EQ(l.OnFailure("1.2.3.4", 1, 0), 100);
  EXPECT_EQ(l.OnFailure("1.2.3.4", 2, 0), 200);
  EXPECT_EQ(l.OnFailure("1.2.3.4", 1000, 0), 5000);  // capped
}

TEST(ClientLimits, AuthLimiterRefusesAnAddressForAWindow) {
  AuthLimiter l(AuthLimits{3, 10000, 0, 5000, 16});
  EXPECT_TRUE(l.Allowed("a", 0));
  l.OnFailure("a", 1, 0);
  l.OnFailure("a", 1, 1);
  EXPECT_TRUE(l.Allowed("a", 2));
  l.OnFailure("a", 1, 2);
  EXPECT_FALSE(l.Allowed("a", 3));
  EXPECT_TRUE(l.Allowed("b", 3));  // other addresses are not affected
  EXPECT_FALSE(l.Allowed("a", 10001));
  EXPECT_TRUE(l.Allowed("a", 10002));
  // Failures spread over more than the window do not add up.
  l.OnFailure("c", 1, 0);
  l.OnFailure("c", 1, 5000);
  l.OnFailure("c", 1, 15001);
  EXPECT_TRUE(l.Allowed("c", 15002));
}

TEST(ClientLimits, AuthLimiterTableIsBounded) {
  AuthLimiter l(AuthLimits{3, 10000, 0, 5000, 16});
  for (int i = 0; i < 1000; ++i) l.OnFailure("addr" + std::to_string(i), 1, i);
  EXPECT_LE(l.tracked(), 16u);
  l.Prune(100000);
  EXPECT_EQ(l.tracked(), 0u);
}

TEST(ClientLimits, AddressOf) {
  EXPECT_EQ(AddressOf("127.0.0.1:5000"), "127.0.0.1");
  EXPECT_EQ(AddressOf("[::1]:5000"), "[::1]");
  EXPECT_EQ(AddressOf("noport"), "noport");
}

}  // namespace
}  // namespace itsuka::server
