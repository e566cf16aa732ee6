// Time as an interface, so the simulator can run nodes on a virtual clock.
// src/core never reads a clock: the shell passes times in as arguments.
#pragma once

#include <cstdint>

namespace itsuka {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds on a clock that never goes backwards (for timeouts).
  virtual int64_t MonotonicMs() const = 0;
  // Milliseconds since the Unix epoch (for expiry times given by clients).
  virtual int64_t WallMs() const = 0;
};

// The operating system's clocks. Thread-safe.
class SystemClock : public Clock {
 public:
  int64_t MonotonicMs() const override;
  int64_t WallMs() const override;
};

}  // namespace itsuka
