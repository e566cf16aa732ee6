#include "core/hints.h"

#include <algorithm>

namespace itsuka::core {

bool HintLedger::Fits(const std::string& target, bool had, uint64_t old_bytes,
                      uint64_t new_bytes) const {
  if (had && new_bytes <= old_bytes) return true;
  HintUsage u;
  if (auto it = usage_.find(target); it != usage_.end()) u = it->second;
  const uint64_t keys = u.keys + (had ? 0 : 1);
  const uint64_t bytes = u.bytes - (had ? std::min(old_bytes, u.bytes) : 0) + new_bytes;
  return keys <= limits_.max_keys_per_target && bytes <= limits_.max_bytes_per_target;
}

void HintLedger::Apply(const std::string& target, bool had, uint64_t old_bytes, bool has,
                       uint64_t new_bytes) {
  HintUsage& u = usage_[target];
  if (had) {
    u.keys -= std::min<uint64_t>(u.keys, 1);
    u.bytes -= std::min(u.bytes, old_bytes);
  }
  if (has) {
    u.keys += 1;
    u.bytes += new_bytes;
  }
  if (u.keys == 0) usage_.erase(target);
}

size_t RateLimiter::Take(int64_t now_ms, size_t want) {
  if (rate_ <= 0) return 0;
  if (last_ms_ < 0) {
    last_ms_ = now_ms;
    tokens_ = static_cast<double>(rate_) / 10;  // a tenth of a second's worth to start
  } else if (now_ms > last_ms_) {
    tokens_ = std::min<double>(static_cast<double>(rate_),
                               tokens_ + static_cast<double>(rate_) * (now_ms - last_ms_) / 1000.0);
    last_ms_ = now_ms;
  }
  const size_t got = std::min<size_t>(want, static_cast<size_t>(tokens_));
  tokens_ -= static_cast<double>(got);
  return got;
}

void RateLimiter::Refund(size_t n) {
  tokens_ = std::min<double>(static_cast<double>(rate_), tokens_ + static_cast<double>(n));
}

}  // namespace itsuka::core
