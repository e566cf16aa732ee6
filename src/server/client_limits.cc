#include "server/client_limits.h"

#include <algorithm>

#include "wire/resp.h"

namespace itsuka::server {
namespace {

size_t StringBytes(const std::string& s) {
  return sizeof(std::string) + wire::RespParser::StringHeapBytes(s.size());
}

size_t ClockBytes(const core::VClock& clock) {
  size_t n = 0;
  for (const core::VClock::Entry& e : clock.entries()) n += sizeof(e) + wire::RespParser::StringHeapBytes(e.first.size());
  return n;
}

}  // namespace

size_t ResultBytes(const core::ClientResult& result) {
  size_t n = sizeof(core::ClientResult) + ClockBytes(result.object.clock);
  for (const core::Sibling& s : result.object.siblings) {
    n += sizeof(core::Sibling) + wire::RespParser::StringHeapBytes(s.value.size()) +
         wire::RespParser::StringHeapBytes(s.dot.node.size());
  }
  for (const std::string& k : result.keys) n += wire::RespParser::StringHeapBytes(k.size());
  return n;
}

size_t WriteSpecBytes(const std::string& key, const core::WriteSpec& spec) {
  return sizeof(core::WriteSpec) + StringBytes(key) +
         wire::RespParser::StringHeapBytes(spec.version.value.size()) + ClockBytes(spec.context);
}

void ReadEstimate::Observe(size_t bytes) {
  value_ = std::max({bytes, value_ - value_ / 16, kFloor});
}

bool MayStart(size_t inflight, size_t max_inflight, size_t committed, size_t estimate,
              size_t soft_limit) {
  if (inflight == 0) return true;
  return inflight < max_inflight && committed + estimate <= soft_limit;
}

bool AuthLimiter::Allowed(const std::string& address, int64_t now_ms) {
  auto it = entries_.find(address);
  return it == entries_.end() || it->second.blocked_until_ms <= now_ms;
}

int64_t AuthLimiter::delay_for(int64_t conn_failures) const {
  return std::min(limits_.max_delay_ms, limits_.delay_ms * std::max<int64_t>(conn_failures, 1));
}

int64_t AuthLimiter::OnFailure(const std::string& address, int64_t conn_failures,
                               int64_t now_ms) {
  if (entries_.size() >= limits_.max_tracked && entries_.find(address) == entries_.end()) {
    Prune(now_ms);
    // Still full: forget the oldest window so the table stays bounded.
    if (entries_.size() >= limits_.max_tracked) {
      auto oldest = std::min_element(entries_.begin(), entries_.end(), [](auto& a, auto& b) {
        return a.second.window_start_ms < b.second.window_start_ms;
      });
      entries_.erase(oldest);
    }
  }
  Entry& e = entries_[address];
  if (now_ms - e.window_start_ms >= limits_.window_ms || e.failures == 0) {
    e.window_start_ms = now_ms;
    e.failures = 0;
  }
  ++e.failures;
  if (e.failures >= limits_.max_failures) {
    e.blocked_until_ms = now_ms + limits_.window_ms;
    e.window_start_ms = now_ms;  // a new window starts when the block ends
    e.failures = 0;
  }
  return delay_for(conn_failures);
}

void AuthLimiter::Prune(int64_t now_ms) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = it->second;
    if (e.blocked_until_ms <= now_ms && now_ms - e.window_start_ms >= limits_.window_ms) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string AddressOf(const std::string& peer) {
  size_t colon = peer.rfind(':');
  if (colon == std::string::npos || colon == 0) return peer;
  return peer.substr(0, colon);
}

}  // namespace itsuka::server
