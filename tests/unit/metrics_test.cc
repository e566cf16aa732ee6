// The Prometheus text writer, the metrics.port request parser (server/metrics*.h) and
// the line splitter they share with the secret file parser (common/lines.h).
#include "server/metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/lines.h"
#include "server/metrics_http.h"

namespace itsuka::server {
namespace {

TEST(Metrics, NumericInfoLinesBecomeUntypedMetrics) {
  MetricsWriter w;
  w.AddInfo("# Memory\r\nused_memory:123\r\nratio:1.25\r\nname:text\r\n\r\n# Stats\r\nneg:-4\r\n");
  const std::string t = w.Text();
  EXPECT_NE(t.find("# TYPE itsuka_used_memory untyped\nitsuka_used_memory 123\n"), std::string::npos);
  EXPECT_NE(t.find("itsuka_ratio 1.25\n"), std::string::npos);
  EXPECT_NE(t.find("itsuka_neg -4\n"), std::string::npos);
  EXPECT_EQ(t.find("itsuka_name"), std::string::npos);  // text values are not samples
}

TEST(Metrics, ListLinesBecomeLabelledSamplesGroupedByName) {
  MetricsWriter w;
  w.AddInfo(
      "peer0:id=n2,addr=127.0.0.1:9,state=up,phi=0.4,offset_ms=3\r\n"
      "peer1:id=n\"3,addr=127.0.0.1:8,state=down,phi=inf\r\n"
      "db0:keys=5,expires=0,avg_ttl=0\r\n");
  const std::string t = w.Text();
  EXPECT_NE(t.find("itsuka_peer_phi{id=\"n2\",addr=\"127.0.0.1:9\",state=\"up\"} 0.4\n"
                   "itsuka_peer_phi{id=\"n\\\"3\",addr=\"127.0.0.1:8\",state=\"down\"} +Inf\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("itsuka_peer_offset_ms{id=\"n2\",addr=\"127.0.0.1:9\",state=\"up\"} 3\n"),
            std::string::npos);
  EXPECT_NE(t.find("itsuka_db_keys{db=\"db0\"} 5\n"), std::string::npos);
  // One header per name.
  EXPECT_EQ(t.find("# TYPE itsuka_peer_phi"), t.rfind("# TYPE itsuka_peer_phi"));
}

TEST(Metrics, RepeatedSeriesIsWrittenOnce) {
  MetricsWriter w;
  w.AddInfo("x:1\r\nx:2\r\n");
  const std::string t = w.Text();
  EXPECT_NE(t.find("itsuka_x 1\n"), std::string::npos);
  EXPECT_EQ(t.find("itsuka_x 2\n"), std::string::npos);
}

TEST(Metrics, HistogramIsCumulativeWithSumAndCount) {
  LatencyHistogram h;
  h.Record(40);        // <= 50 us
  h.Record(700);       // <= 1 ms
  h.Record(20000000);  // over the last bound: +Inf only
  EXPECT_EQ(h.Cumulative(0), 1u);
  EXPECT_EQ(h.Cumulative(4), 2u);
  EXPECT_EQ(h.Cumulative(LatencyHistogram::kBoundsUs.size() - 1), 2u);
  MetricsWriter w;
  w.Histogram("lat_seconds", "help", LabelPair("command", "get"), h);
  const std::string t = w.Text();
  EXPECT_NE(t.find("# TYPE lat_seconds histogram\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_bucket{command=\"get\",le=\"5e-05\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_bucket{command=\"get\",le=\"0.001\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_bucket{command=\"get\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_sum{command=\"get\"} 20.000740\n"), std::string::npos);
  EXPECT_NE(t.find("lat_seconds_count{command=\"get\"} 3\n"), std::string::npos);
}

TEST(Metrics, NamesAndValues) {
  EXPECT_EQ(MetricName("a-b.c"), "a_b_c");
  EXPECT_EQ(MetricName("0x"), "_0x");
  std::string v;
  EXPECT_TRUE(SampleValue("12", &v));
  EXPECT_TRUE(SampleValue("-1.5", &v));
  EXPECT_FALSE(SampleValue("1.2.3", &v));
  EXPECT_FALSE(SampleValue("", &v));
  EXPECT_FALSE(SampleValue("-", &v));
  EXPECT_FALSE(SampleValue("12ms", &v));
  EXPECT_EQ(LabelPair("k", "a\\b\nc"), "k=\"a\\\\b\\nc\"");
}

TEST(MetricsHttp, ParsesRequests) {
  using P = MetricsHttp::Parse;
  EXPECT_EQ(MetricsHttp::ParseRequest("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), P::kMetrics);
  EXPECT_EQ(MetricsHttp::ParseRequest("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), P::kMetrics);
  EXPECT_EQ(MetricsHttp::ParseRequest("HEAD /metrics HTTP/1.1\r\n\r\n"), P::kHead);
  EXPECT_EQ(MetricsHttp::ParseRequest("GET / HTTP/1.1\r\n\r\n"), P::kNotFound);
  EXPECT_EQ(MetricsHttp::ParseRequest("GET /metrics HTTP/1.1\r\nHost"), P::kNeedMore);
  EXPECT_EQ(MetricsHttp::ParseRequest("GET /met"), P::kNeedMore);
  EXPECT_EQ(MetricsHttp::ParseRequest("POST /metrics HTTP/1.1\r\n\r\n"), P::kBad);
  EXPECT_EQ(MetricsHttp::ParseRequest("GET /metrics SPDY\r\n\r\n"), P::kBad);
  EXPECT_EQ(MetricsHttp::ParseRequest("GET  /metrics HTTP/1.1\r\n\r\n"), P::kBad);
  EXPECT_EQ(MetricsHttp::ParseRequest("GET metrics HTTP/1.1\r\n\r\n"), P::kBad);
  EXPECT_EQ(MetricsHttp::ParseRequest("*1\r\n$4\r\nPING\r\n\r\n"), P::kBad);
  EXPECT_EQ(MetricsHttp::ParseRequest("GET /metrics\n"), P::kBad);  // bare LF in the line
}

}  // namespace
}  // namespace itsuka::server

TEST(LineReader, SplitsOnNewlinesDropsOneCarriageReturnAndCountsLines) {
  itsuka::LineReader lines("a\r\n\nb c\r\r\nlast");
  std::string_view line;
  std::vector<std::pair<int, std::string>> seen;
  while (lines.Next(&line)) seen.emplace_back(lines.number(), std::string(line));
  const std::vector<std::pair<int, std::string>> want = {
      {1, "a"}, {2, ""}, {3, "b c\r"}, {4, "last"}};
  EXPECT_EQ(seen, want);
  itsuka::LineReader empty("");
  EXPECT_FALSE(empty.Next(&line));
  EXPECT_EQ(empty.number(), 0);
  itsuka::LineReader trailing("x\n");
  ASSERT_TRUE(trailing.Next(&line));
  EXPECT_EQ(line, "x");
  EXPECT_FALSE(trailing.Next(&line));  // no empty line after a final newline
}
