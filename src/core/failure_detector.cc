#include "core/failure_detector.h"

#include <algorithm>
#include <cmath>

namespace itsuka::core {

PhiAccrualDetector::PhiAccrualDetector(int64_t first_interval_ms, int64_t min_stddev_ms,
                                       int64_t acceptable_pause_ms, size_t window)
    : min_stddev_ms_(min_stddev_ms), acceptable_pause_ms_(acceptable_pause_ms), window_(window) {
  // Seed the window with a guess (mean first_interval, stddev first_interval / 4) so the
  // first real intervals are judged against something sensible.
  const double m = static_cast<double>(first_interval_ms), d = m / 4;
  intervals_ = {static_cast<int64_t>(m - d), static_cast<int64_t>(m + d)};
  for (int64_t i : intervals_) {
    sum_ += static_cast<double>(i);
    sum_sq_ += static_cast<double>(i) * static_cast<double>(i);
  }
}

void PhiAccrualDetector::Heartbeat(int64_t now_ms) {
  if (last_beat_ms_ >= 0 && now_ms >= last_beat_ms_) {
    const int64_t interval = now_ms - last_beat_ms_;
    intervals_.push_back(interval);
    sum_ += static_cast<double>(interval);
    sum_sq_ += static_cast<double>(interval) * static_cast<double>(interval);
    if (intervals_.size() > window_) {
      const double old = static_cast<double>(intervals_.front());
      intervals_.pop_front();
      sum_ -= old;
      sum_sq_ -= old * old;
    }
  }
  last_beat_ms_ = std::max(last_beat_ms_, now_ms);
  SignOfLife(now_ms);
}

void PhiAccrualDetector::SignOfLife(int64_t now_ms) { last_ms_ = std::max(last_ms_, now_ms); }

double PhiAccrualDetector::Phi(int64_t now_ms, int64_t extra_pause_ms) const {
  if (last_ms_ < 0) return 0;
  const double n = static_cast<double>(intervals_.size());
  const double pause = static_cast<double>(acceptable_pause_ms_ + std::max<int64_t>(0, extra_pause_ms));
  const double mean = sum_ / n + pause;
  const double variance = std::max(0.0, sum_sq_ / n - (sum_ / n) * (sum_ / n));
  const double stddev = std::max(std::sqrt(variance), static_cast<double>(min_stddev_ms_));
  const double elapsed = static_cast<double>(std::max<int64_t>(0, now_ms - last_ms_));
  // P(X > elapsed) for X ~ N(mean, stddev), with the logistic approximation of the
  // normal CDF (as Akka does): stable far into the tail, where 1 - CDF underflows.
  const double y = (elapsed - mean) / stddev;
  const double e = std::exp(-y * (1.5976 + 0.070566 * y * y));
  if (elapsed > mean) return -std::log10(e / (1.0 + e));
  return -std::log10(1.0 - 1.0 / (1.0 + e));
}

LocalPauseGuard::LocalPauseGuard(int64_t interval_ms, int64_t max_pause_ms, size_t window)
    : interval_ms_(std::max<int64_t>(1, interval_ms)),
      max_pause_ms_(std::max<int64_t>(0, max_pause_ms)),
      window_(std::max<size_t>(1, window)) {}

bool LocalPauseGuard::Tick(int64_t now_ms) {
  int64_t late = 0;
  if (last_tick_ms_ >= 0 && now_ms > last_tick_ms_) late = now_ms - last_tick_ms_ - interval_ms_;
  late = std::max<int64_t>(0, late);
  last_tick_ms_ = std::max(last_tick_ms_, now_ms);
  lateness_.push_back(late);
  if (lateness_.size() > window_) lateness_.pop_front();
  may_convict_ = late <= interval_ms_;
  return may_convict_;
}

int64_t LocalPauseGuard::acceptable_pause_ms() const {
  int64_t worst = 0;
  for (int64_t l : lateness_) worst = std::max(worst, l);
  return std::min(worst, max_pause_ms_);
}

}  // namespace itsuka::core
