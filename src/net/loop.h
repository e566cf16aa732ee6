// The event loop and its small handles (timers, signals). The only code that sees uv_*
// is in src/net; everything here exposes plain C++ types and callbacks.
//
// Handle hygiene: each wrapper owns a heap block holding its uv handle; destroying the
// wrapper calls uv_close, and the close callback frees the block, so a handle is never
// freed while libuv still references it. All objects belong to the loop's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace itsuka::net {

class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs until Stop() is called and no work is left that Stop() did not cancel.
  void Run();
  void Stop();

  // Called once per loop iteration after I/O callbacks ran and again before the loop
  // blocks: the place to commit batched writes and flush replies.
  void SetAfterIoHook(std::function<void()> hook);
  // Called once per loop iteration right after the I/O callbacks of its poll (before the
  // after-I/O hook), never before the poll: the place to judge deadlines, since what
  // arrived while the loop was busy has been read by then.
  void SetAfterPollHook(std::function<void()> hook);
  // Makes the next poll return at once (it still reads what is ready), so the
  // after-poll hook runs without waiting for I/O or another timer: for a timer callback
  // that leaves its work to the hook.
  void WantAfterPoll();

  // Monotonic milliseconds, cached per iteration.
  int64_t NowMs() const;

  struct Impl;
  Impl* impl() const { return impl_.get(); }

 private:
  std::unique_ptr<Impl> impl_;
};

class Timer {
 public:
  Timer(Loop& loop, std::function<void()> on_fire);
  ~Timer();
  // Fires after `delay_ms`, then every `repeat_ms` if non-zero.
  void Start(uint64_t delay_ms, uint64_t repeat_ms);
  void Stop();

  struct Impl;

 private:
  Impl* impl_;
};

class SignalWatcher {
 public:
  SignalWatcher(Loop& loop, int signum, std::function<void()> on_signal);
  ~SignalWatcher();

  struct Impl;

 private:
  Impl* impl_;
};

}  // namespace itsuka::net
