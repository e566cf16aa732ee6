// A core::HintStore over std::maps, for unit tests of the core: hints keyed by
// (target, key), later writes merged into the same hint, stamped with `now_ms`.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/hints.h"
#include "core/object.h"

namespace itsuka::core {

class MapHintStore : public HintStore {
 public:
  Status Add(const std::string& target, std::string_view key, const Object& obj) override {
    Hint& h = hints[target][std::string(key)];
    h.key = std::string(key);
    h.object = Merge(h.object, obj);
    h.updated_ms = now_ms;
    return Status::Ok();
  }
  Result<std::optional<Hint>> Get(const std::string& target, std::string_view key) override {
    auto t = hints.find(target);
    if (t == hints.end()) return std::optional<Hint>();
    auto h = t->second.find(std::string(key));
    if (h == t->second.end()) return std::optional<Hint>();
    return std::optional<Hint>(h->second);
  }
  void Remove(const std::string& target, std::string_view key) override {
    auto t = hints.find(target);
    if (t == hints.end()) return;
    t->second.erase(std::string(key));
    if (t->second.empty()) hints.erase(t);
  }
  Result<std::vector<Hint>> Scan(const std::string& target, std::string_view start,
                                 size_t limit) override {
    std::vector<Hint> out;
    auto t = hints.find(target);
    if (t == hints.end()) return out;
    for (auto it = t->second.lower_bound(std::string(start));
         it != t->second.end() && out.size() < limit; ++it) {
      out.push_back(it->second);
    }
    return out;
  }
  std::map<std::string, HintUsage> Usage() const override {
    std::map<std::string, HintUsage> u;
    for (const auto& [target, keys] : hints) u[target].keys = keys.size();
    return u;
  }
  std::map<std::string, std::map<std::string, Hint>> hints;
  int64_t now_ms = 0;
};

}  // namespace itsuka::core
