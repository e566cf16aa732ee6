#include "server/metrics.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <tuple>

#include "common/lines.h"

namespace itsuka::server {

int64_t MonotonicMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void LatencyHistogram::Record(int64_t us) {
  if (us < 0) us = 0;
  ++count_;
  sum_us_ += us;
  for (size_t i = 0; i < kBoundsUs.size(); ++i) {
    if (us <= kBoundsUs[i]) {
      ++buckets_[i];
      return;
    }
  }
  // Over the last bound: only in +Inf (count_).
}

uint64_t LatencyHistogram::Cumulative(size_t i) const {
  uint64_t n = 0;
  for (size_t j = 0; j <= i && j < buckets_.size(); ++j) n += buckets_[j];
  return n;
}

const char* CommandModeName(CommandMode mode) {
  switch (mode) {
    case CommandMode::kLocal: return "local";
    case CommandMode::kEventual: return "eventual";
    case CommandMode::kConsistent: return "consistent";
  }
  return "local";
}

void CommandLatency::Record(const std::string* command, CommandMode mode, int64_t us) {
  by_command_[{command, mode}].Record(us);
}

std::vector<CommandLatency::Entry> CommandLatency::All() const {
  std::vector<Entry> all;
  all.reserve(by_command_.size());
  for (const auto& [key, h] : by_command_) all.push_back({key.first, key.second, &h});
  std::sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) {
    return std::tie(*a.command, a.mode) < std::tie(*b.command, b.mode);
  });
  return all;
}

std::string LabelPair(std::string_view key, std::string_view value) {
  std::string s = MetricName(key) + "=\"";
  for (char c : value) {
    if (c == '\\') s += "\\\\";
    else if (c == '"') s += "\\\"";
    else if (c == '\n') s += "\\n";
    else s.push_back(c);
  }
  return s + "\"";
}

std::string MetricName(std::string_view key) {
  std::string s;
  for (char c : key) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
    s.push_back(ok ? c : '_');
  }
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])) != 0) s.insert(0, "_");
  return s;
}

bool SampleValue(std::string_view text, std::string* value) {
  if (text == "inf" || text == "+inf") return *value = "+Inf", true;
  if (text == "-inf") return *value = "-Inf", true;
  if (text == "nan" || text == "-nan") return *value = "NaN", true;
  size_t i = 0, digits = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  bool dot = false;
  for (; i < text.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
      ++digits;
    } else if (text[i] == '.' && !dot) {
      dot = true;
    } else {
      return false;
    }
  }
  if (digits == 0) return false;
  *value = std::string(text);
  return true;
}

MetricsWriter::Family& MetricsWriter::Get(const std::string& name, const char* type,
                                          const std::string& help) {
  auto it = families_.find(name);
  if (it != families_.end()) return it->second;
  order_.push_back(name);
  Family& f = families_[name];
  f.header = "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  return f;
}

void MetricsWriter::Sample(const std::string& name, const char* type, const std::string& help,
                           const std::string& labels, const std::string& value) {
  Family& f = Get(name, type, help);
  if (!f.labels.emplace(labels, true).second) return;  // one sample per series
  f.samples += labels.empty() ? name : name + "{" + labels + "}";
  f.samples += " " + value + "\n";
}

void MetricsWriter::Histogram(const std::string& name, const std::string& help,
                              const std::string& labels, const LatencyHistogram& h) {
  Family& f = Get(name, "histogram", help);
  if (!f.labels.emplace(labels, true).second) return;
  const std::string sep = labels.empty() ? "" : ",";
  char buf[64];
  for (size_t i = 0; i < LatencyHistogram::kBoundsUs.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%g", static_cast<double>(LatencyHistogram::kBoundsUs[i]) / 1e6);
    f.samples += name + "_bucket{" + labels + sep + "le=\"" + buf + "\"} " +
                 std::to_string(h.Cumulative(i)) + "\n";
  }
  f.samples += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(h.count()) + "\n";
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(h.sum_us()) / 1e6);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  f.samples += name + "_sum" + braces + " " + buf + "\n";
  f.samples += name + "_count" + braces + " " + std::to_string(h.count()) + "\n";
}

namespace {

// An INFO list line's value ("id=n2,addr=1.2.3.4:7,state=up,phi=0.4"): each numeric
// field becomes itsuka_<base>_<field>, the others its labels.
void AddListLine(MetricsWriter& w, std::string_view key, std::string_view value) {
  std::string base(key);
  while (!base.empty() && std::isdigit(static_cast<unsigned char>(base.back())) != 0) base.pop_back();
  std::string labels;
  std::vector<std::pair<std::string, std::string>> numbers;
  // "db0:keys=1,expires=0": the database is the label.
  if (base == "db") labels = LabelPair("db", key);
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view field = value.substr(pos, comma - pos);
    pos = comma + 1;
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view k = field.substr(0, eq), v = field.substr(eq + 1);
    std::string number;
    if (SampleValue(v, &number)) {
      numbers.emplace_back(MetricName(k), number);
    } else {
      labels += (labels.empty() ? "" : ",") + LabelPair(k, v);
    }
  }
  for (const auto& [field, number] : numbers) {
    w.Sample("itsuka_" + MetricName(base) + "_" + field, "untyped",
             "INFO " + base + "N line, field " + field, labels, number);
  }
}

}  // namespace

void MetricsWriter::AddInfo(std::string_view info) {
  LineReader lines(info);
  std::string_view line;
  while (lines.Next(&line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view key = line.substr(0, colon), value = line.substr(colon + 1);
    std::string number;
    if (SampleValue(value, &number)) {
      Sample("itsuka_" + MetricName(key), "untyped", "INFO " + std::string(key), "", number);
    } else if (value.find('=') != std::string_view::npos) {
      AddListLine(*this, key, value);
    }
  }
}

std::string MetricsWriter::Text() const {
  std::string s;
  for (const std::string& name : order_) {
    const Family& f = families_.at(name);
    s += f.header;
    s += f.samples;
  }
  return s;
}

}  // namespace itsuka::server
