// Log line formats (common/log.h): text escapes control bytes, JSON lines stay valid
// JSON whatever bytes the text holds.
#include "common/log.h"

#include <gtest/gtest.h>

namespace itsuka {
namespace {

constexpr int64_t kWallMs = 1796154161123;  // 2026-12-01T19:42:41.123Z

TEST(Log, TextLine) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, LogLevel::kInfo, kWallMs, "peer n2\nis up"),
            "2026-12-01T19:42:41.123Z INFO  peer n2\\x0ais up");
}

TEST(Log, JsonLineEscapesQuotesControlAndNonAscii) {
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, LogLevel::kWarn, kWallMs, "a\"b\\c\nd\xff"),
            "{\"ts\":\"2026-12-01T19:42:41.123Z\",\"level\":\"warn\",\"msg\":\"a\\\"b\\\\c\\u000ad"
            "\\u00ff\"}");
}

}  // namespace
}  // namespace itsuka
