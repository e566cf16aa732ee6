#include "core/version.h"

#include <algorithm>

namespace itsuka::core {

bool VClock::IsWellFormed(const std::vector<Entry>& entries) {
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].second == 0 || entries[i].second > kMaxClockCounter) return false;
    if (entries[i].first.empty() || entries[i].first.size() > kMaxClockNodeBytes) return false;
    if (i > 0 && !(entries[i - 1].first < entries[i].first)) return false;
  }
  return true;
}

uint64_t VClock::Get(std::string_view node) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), node,
                             [](const Entry& e, std::string_view n) { return e.first < n; });
  return (it != entries_.end() && it->first == node) ? it->second : 0;
}

void VClock::Raise(std::string_view node, uint64_t counter) {
  if (counter == 0) return;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), node,
                             [](const Entry& e, std::string_view n) { return e.first < n; });
  if (it != entries_.end() && it->first == node) {
    it->second = std::max(it->second, counter);
  } else {
    entries_.insert(it, Entry(std::string(node), counter));
  }
}

bool VClock::Descends(const VClock& other) const {
  for (const auto& [node, counter] : other.entries_) {
    if (Get(node) < counter) return false;
  }
  return true;
}

void VClock::Join(const VClock& other) {
  std::vector<Entry> out;
  out.reserve(entries_.size() + other.entries_.size());
  auto a = entries_.begin();
  auto b = other.entries_.begin();
  while (a != entries_.end() || b != other.entries_.end()) {
    if (b == other.entries_.end() || (a != entries_.end() && a->first < b->first)) {
      out.push_back(*a++);
    } else if (a == entries_.end() || b->first < a->first) {
      out.push_back(*b++);
    } else {
      out.emplace_back(a->first, std::max(a->second, b->second));
      ++a;
      ++b;
    }
  }
  entries_ = std::move(out);
}

std::string ToString(const VClock& clock) {
  std::string s = "{";
  for (size_t i = 0; i < clock.entries().size(); ++i) {
    if (i) s += ",";
    s += clock.entries()[i].first + ":" + std::to_string(clock.entries()[i].second);
  }
  return s + "}";
}

}  // namespace itsuka::core
