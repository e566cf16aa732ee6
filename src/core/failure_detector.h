// Phi-accrual failure detection (Hayashibara et al., "The φ Accrual Failure Detector",
// SRDS 2004; as Cassandra and Akka use it).
//
// Instead of a yes/no verdict after a fixed timeout, the detector says how suspicious
// the silence of a peer is: φ = -log10(P(a heartbeat arrives this late)), with the
// inter-arrival times of recent heartbeats modelled as a normal distribution. φ = 1
// means a 10% chance the peer is fine, φ = 8 about one in 10^8. Callers compare φ to a
// configured threshold; suspicion only steers routing, it never removes a member.
//
// Pure: times come in as arguments. Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>

namespace itsuka::core {

class PhiAccrualDetector {
 public:
  // `min_stddev_ms` keeps very regular heartbeats from making φ jump at the first
  // hiccup; `acceptable_pause_ms` is added to the expected interval (GC, scheduling).
  explicit PhiAccrualDetector(int64_t first_interval_ms = 500, int64_t min_stddev_ms = 100,
                              int64_t acceptable_pause_ms = 0, size_t window = 100);

  void Heartbeat(int64_t now_ms);
  // 0 before the first heartbeat (nothing to suspect yet).
  double Phi(int64_t now_ms) const;
  bool has_heartbeat() const { return last_ms_ >= 0; }
  // When the last heartbeat arrived (-1 before the first).
  int64_t last_heartbeat_ms() const { return last_ms_; }

 private:
  int64_t min_stddev_ms_, acceptable_pause_ms_;
  size_t window_;
  std::deque<int64_t> intervals_;
  double sum_ = 0, sum_sq_ = 0;
  int64_t last_ms_ = -1;
};

}  // namespace itsuka::core
