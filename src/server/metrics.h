// Prometheus figures of a node (issue 14): the text exposition format 0.0.4, written
// by hand rather than with prometheus-cpp (Debian's exposer serves from its own
// civetweb threads; the node serves from its libuv loop, and the format is a few
// lines of text per metric).
//
// One source of figures: every numeric "key:value" line of INFO becomes a metric
// itsuka_<key> (untyped: INFO does not say counter or gauge; names ending in _total,
// _processed, _received... are counters by meaning), and INFO's list lines
// ("peer0:id=n2,addr=..,state=up,phi=0.4,offset_ms=1") become one metric per numeric
// field with the other fields as labels (itsuka_peer_phi{id="n2",addr="..",state="up"}).
// Besides INFO, the latency histograms below, which INFO does not carry.
//
// Thread-compatible: owned by the Node, used from the event-loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace itsuka::server {

// Steady-clock microseconds, for latency measurement only (not the loop's time).
int64_t MonotonicMicros();

// A latency histogram with fixed bucket bounds (microseconds, exported as seconds).
class LatencyHistogram {
 public:
  static constexpr std::array<int64_t, 16> kBoundsUs = {
      50,    100,    250,    500,    1000,    2500,    5000,    10000,
      25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000};
  void Record(int64_t us);
  uint64_t count() const { return count_; }
  // Observations <= kBoundsUs[i] (cumulative, as Prometheus wants them).
  uint64_t Cumulative(size_t i) const;
  int64_t sum_us() const { return sum_us_; }

 private:
  std::array<uint64_t, kBoundsUs.size()> buckets_{};  // per bucket, not cumulative
  uint64_t count_ = 0;
  int64_t sum_us_ = 0;
};

// How a command reached its data, a label of the latency histograms.
enum class CommandMode : uint8_t {
  kLocal = 0,   // no replicated request (PING, INFO, CONFIG, errors)
  kEventual,    // R/W quorum reads and writes
  kConsistent,  // through Paxos (CONSISTENT)
};
const char* CommandModeName(CommandMode mode);

// Client command latency from parse to reply handed to the socket (after the group
// commit that releases it), per command name and mode. Names come from the command
// table only (unknown commands are not recorded), so the label set is bounded.
class CommandLatency {
 public:
  // `command` points at the command table's name (it outlives the node), so a reply's
  // record is a hash of a pointer, not a string comparison per map level.
  void Record(const std::string* command, CommandMode mode, int64_t us);
  struct Entry {
    const std::string* command;
    CommandMode mode;
    const LatencyHistogram* histogram;
  };
  // Every (command, mode) recorded, ordered by command name then mode.
  std::vector<Entry> All() const;

 private:
  struct KeyHash {
    size_t operator()(const std::pair<const std::string*, CommandMode>& k) const {
      return std::hash<const void*>()(k.first) * 3 + static_cast<size_t>(k.second);
    }
  };
  std::unordered_map<std::pair<const std::string*, CommandMode>, LatencyHistogram, KeyHash>
      by_command_;
};

// Builds exposition text: one HELP/TYPE header per metric name, then its samples.
class MetricsWriter {
 public:
  // `labels` is a rendered label list without braces (LabelPair output joined by ',').
  void Sample(const std::string& name, const char* type, const std::string& help,
              const std::string& labels, const std::string& value);
  void Histogram(const std::string& name, const std::string& help, const std::string& labels,
                 const LatencyHistogram& h);
  // Every numeric line of INFO text (see the file comment).
  void AddInfo(std::string_view info);
  // The exposition text: each metric's samples grouped under its header (the format
  // wants one group per name), in the order the names first appeared.
  std::string Text() const;

 private:
  struct Family {
    std::string header;  // HELP and TYPE lines
    std::string samples;
    std::map<std::string, bool> labels;  // label sets written (a repeat is dropped)
  };
  Family& Get(const std::string& name, const char* type, const std::string& help);
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

// `key="value"` with the value escaped as the format asks (\\, \", \n).
std::string LabelPair(std::string_view key, std::string_view value);
// A metric name from an INFO key: [a-zA-Z0-9_] kept, anything else becomes '_'.
std::string MetricName(std::string_view key);
// A sample value from INFO text: integers and decimals as written, inf/-inf/nan as the
// format spells them (+Inf, -Inf, NaN). False if `text` is not a number.
bool SampleValue(std::string_view text, std::string* value);

}  // namespace itsuka::server
