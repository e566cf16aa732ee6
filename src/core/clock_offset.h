// Peer clock offsets, measured NTP-style from heartbeat probes, and the max-offset rule
// for TTL writes.
//
// Design note (RFC 5905 §8 on-wire offset; CockroachDB's --max-offset): a prober sends
// its wall clock t0, the peer answers with its own wall clock t1, the answer arrives at
// t2. With the two legs of the round trip taking about the same time, the peer's clock
// reads t1 - (t0 + t2) / 2 ahead of the prober's, give or take (t2 - t0) / 2. Of the
// last few samples the one with the shortest round trip is the best estimate (NTP's
// clock filter). A node compares its clock with a majority of its reachable peers: if
// a majority are further off than the bound (even allowing for the uncertainty), it is
// most likely this node whose clock is wrong, and an expiry it computes would be wrong
// by as much for every reader, so it refuses to set one. A lone skewed peer does not
// make a healthy node refuse (it is off from that peer only, not from a majority).
//
// Pure functions and a value type; time comes in as arguments. Thread-compatible.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace itsuka::core {

struct OffsetSample {
  int64_t offset_ms = 0;       // the peer's clock minus this node's
  int64_t uncertainty_ms = 0;  // half the round trip
};

// The estimate from one probe: t0 sent, t1 the peer's clock, t2 received (all wall ms).
// False (no sample) if the round trip is negative or over max_rtt_ms (a clock stepped
// meanwhile, or the answer is too late to say anything).
bool EstimateOffset(int64_t t0, int64_t t1, int64_t t2, int64_t max_rtt_ms, OffsetSample* out);

// The last kWindow samples of one peer; Best() is the one with the smallest uncertainty.
class OffsetFilter {
 public:
  static constexpr size_t kWindow = 8;
  void Add(OffsetSample s);
  bool known() const { return !samples_.empty(); }
  OffsetSample Best() const;
  void Clear() { samples_.clear(); }

 private:
  std::deque<OffsetSample> samples_;
};

// True if this node's clock is off by more than max_offset_ms from a strict majority of
// `peers` (the reachable peers with an estimate): |offset| - uncertainty > max for each
// of them. No peers: false. *typical_ms (if set) is the median offset of `peers`.
bool OffsetExceeded(const std::vector<OffsetSample>& peers, int64_t max_offset_ms,
                    int64_t* typical_ms);

}  // namespace itsuka::core
