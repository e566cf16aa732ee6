#include "core/clock_offset.h"

#include <algorithm>
#include <cstdlib>

namespace itsuka::core {

bool EstimateOffset(int64_t t0, int64_t t1, int64_t t2, int64_t max_rtt_ms, OffsetSample* out) {
  const int64_t rtt = t2 - t0;
  if (rtt < 0 || rtt > max_rtt_ms) return false;
  // t0 + rtt / 2 rather than (t0 + t2) / 2: no overflow for any wall clock values.
  out->offset_ms = t1 - (t0 + rtt / 2);
  out->uncertainty_ms = (rtt + 1) / 2;
  return true;
}

void OffsetFilter::Add(OffsetSample s) {
  samples_.push_back(s);
  if (samples_.size() > kWindow) samples_.pop_front();
}

OffsetSample OffsetFilter::Best() const {
  OffsetSample best;
  bool any = false;
  for (const OffsetSample& s : samples_) {
    if (!any || s.uncertainty_ms < best.uncertainty_ms) best = s;
    any = true;
  }
  return best;
}

bool OffsetExceeded(const std::vector<OffsetSample>& peers, int64_t max_offset_ms,
                    int64_t* typical_ms) {
  if (typical_ms != nullptr) {
    std::vector<int64_t> offs;
    for (const OffsetSample& s : peers) offs.push_back(s.offset_ms);
    std::sort(offs.begin(), offs.end());
    *typical_ms = offs.empty() ? 0 : offs[offs.size() / 2];
  }
  if (peers.empty()) return false;
  size_t off = 0;
  for (const OffsetSample& s : peers) {
    if (std::llabs(s.offset_ms) - s.uncertainty_ms > max_offset_ms) ++off;
  }
  return off * 2 > peers.size();
}

}  // namespace itsuka::core
