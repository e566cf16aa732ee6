// Phi-accrual failure detection (Hayashibara et al., "The φ Accrual Failure Detector",
// SRDS 2004; as Cassandra and Akka use it), and the guard that keeps this node's own
// pauses from being blamed on its peers.
//
// Instead of a yes/no verdict after a fixed timeout, the detector says how suspicious
// the silence of a peer is: φ = -log10(P(a heartbeat arrives this late)), with the
// inter-arrival times of recent heartbeats modelled as a normal distribution. φ = 1
// means a 10% chance the peer is fine, φ = 8 about one in 10^8. Callers compare φ to a
// configured threshold; suspicion only steers routing, it never removes a member.
//
// Two kinds of arrival: a heartbeat (Heartbeat) is both a sample of the model and a sign
// of life; any other message from the peer (SignOfLife) only ends the silence. The model
// is fitted to heartbeats alone: were every frame a sample, a busy connection (a frame
// every millisecond) would teach the detector to expect the next frame within a
// millisecond, and a lull of a few hundred ms in busy traffic would convict the peer.
//
// LocalPauseGuard watches this node's own heartbeat timer. When it fires late, this
// node's loop did not run for that long, so it did not read what peers sent meanwhile:
// silence measured across such a pause is this node's, not the peer's. The guard holds
// every new conviction in a tick that fires more than one interval late (Cassandra's
// "not marking nodes down due to local pause"), and reports the largest lateness of the
// recent ticks, capped, as a pause every detector accepts on top of its model: under a
// machine-wide overload the peers' loops lag like this one's.
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

  // A heartbeat arrived: a sample of the inter-arrival model and a sign of life.
  void Heartbeat(int64_t now_ms);
  // Any other message arrived: the peer is alive (ends the silence), no sample.
  void SignOfLife(int64_t now_ms);
  // 0 before the first sign of life (nothing to suspect yet). `extra_pause_ms` (>= 0) is
  // accepted on top of the configured pause (LocalPauseGuard::acceptable_pause_ms).
  double Phi(int64_t now_ms, int64_t extra_pause_ms = 0) const;
  bool has_heartbeat() const { return last_ms_ >= 0; }
  // When the last heartbeat arrived (-1 before the first).
  int64_t last_heartbeat_ms() const { return last_ms_; }

 private:
  int64_t min_stddev_ms_, acceptable_pause_ms_;
  size_t window_;
  std::deque<int64_t> intervals_;
  double sum_ = 0, sum_sq_ = 0;
  int64_t last_beat_ms_ = -1;  // the last heartbeat (samples are measured from it)
  int64_t last_ms_ = -1;       // the last sign of life of any kind (silence is measured from it)
};

class LocalPauseGuard {
 public:
  // `interval_ms`: the heartbeat timer's period; `max_pause_ms`: the cap on
  // acceptable_pause_ms(); `window`: how many recent ticks it remembers.
  explicit LocalPauseGuard(int64_t interval_ms, int64_t max_pause_ms, size_t window = 50);

  // The heartbeat timer fired at `now_ms`. Returns whether new convictions may be made
  // in this tick: false if it came more than one interval late.
  bool Tick(int64_t now_ms);
  bool may_convict() const { return may_convict_; }
  // The largest lateness (ms past the interval) of the remembered ticks, at most
  // max_pause_ms.
  int64_t acceptable_pause_ms() const;

 private:
  int64_t interval_ms_, max_pause_ms_;
  size_t window_;
  std::deque<int64_t> lateness_;
  int64_t last_tick_ms_ = -1;
  bool may_convict_ = true;
};

}  // namespace itsuka::core
