#include "net/loop.h"

#include <uv.h>

#include "common/log.h"
#include "net/loop_impl.h"

namespace itsuka::net {

Loop::Loop() : impl_(std::make_unique<Impl>()) {
  uv_loop_init(&impl_->loop);
  impl_->loop.data = impl_.get();
  uv_check_init(&impl_->loop, &impl_->check);
  uv_prepare_init(&impl_->loop, &impl_->prepare);
  uv_idle_init(&impl_->loop, &impl_->idle);
  impl_->check.data = impl_.get();
  impl_->prepare.data = impl_.get();
  // Neither hook keeps the loop alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(&impl_->check));
  uv_unref(reinterpret_cast<uv_handle_t*>(&impl_->prepare));
  uv_unref(reinterpret_cast<uv_handle_t*>(&impl_->idle));
}

Loop::~Loop() {
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->check), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->prepare), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->idle), nullptr);
  // Let pending close callbacks run so every wrapper's memory is released.
  uv_run(&impl_->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&impl_->loop);
  if (rc != 0) LOG_WARN << "event loop closed with live handles: " << uv_strerror(rc);
}

void Loop::Run() { uv_run(&impl_->loop, UV_RUN_DEFAULT); }

void Loop::Stop() { uv_stop(&impl_->loop); }

int64_t Loop::NowMs() const { return static_cast<int64_t>(uv_now(&impl_->loop)); }

namespace {

void OnCheck(uv_check_t* h) {
  auto* impl = static_cast<Loop::Impl*>(h->data);
  uv_idle_stop(&impl->idle);
  if (impl->after_poll) impl->after_poll();
  if (impl->after_io) impl->after_io();
}

}  // namespace

void Loop::SetAfterPollHook(std::function<void()> hook) {
  impl_->after_poll = std::move(hook);
  uv_check_start(&impl_->check, OnCheck);
}

void Loop::WantAfterPoll() {
  // An active idle handle makes this iteration's poll return at once (libuv polls with
  // a zero timeout while any idle handle runs), so the check phase follows promptly.
  uv_idle_start(&impl_->idle, [](uv_idle_t*) {});
}

void Loop::SetAfterIoHook(std::function<void()> hook) {
  impl_->after_io = std::move(hook);
  uv_check_start(&impl_->check, OnCheck);
  uv_prepare_start(&impl_->prepare, [](uv_prepare_t* h) {
    auto* impl = static_cast<Impl*>(h->data);
    if (impl->after_io) impl->after_io();
  });
}

// ---- Timer ------------------------------------------------------------------------

struct Timer::Impl {
  uv_timer_t handle;
  std::function<void()> on_fire;
};

Timer::Timer(Loop& loop, std::function<void()> on_fire) : impl_(new Impl) {
  impl_->on_fire = std::move(on_fire);
  uv_timer_init(&loop.impl()->loop, &impl_->handle);
  impl_->handle.data = impl_;
}

Timer::~Timer() {
  uv_timer_stop(&impl_->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->handle),
           [](uv_handle_t* h) { delete static_cast<Impl*>(h->data); });
}

void Timer::Start(uint64_t delay_ms, uint64_t repeat_ms) {
  uv_timer_start(
      &impl_->handle, [](uv_timer_t* h) { static_cast<Impl*>(h->data)->on_fire(); }, delay_ms,
      repeat_ms);
}

void Timer::Stop() { uv_timer_stop(&impl_->handle); }

// ---- SignalWatcher ----------------------------------------------------------------

struct SignalWatcher::Impl {
  uv_signal_t handle;
  std::function<void()> on_signal;
};

SignalWatcher::SignalWatcher(Loop& loop, int signum, std::function<void()> on_signal)
    : impl_(new Impl) {
  impl_->on_signal = std::move(on_signal);
  uv_signal_init(&loop.impl()->loop, &impl_->handle);
  impl_->handle.data = impl_;
  uv_signal_start(
      &impl_->handle, [](uv_signal_t* h, int) { static_cast<Impl*>(h->data)->on_signal(); },
      signum);
}

SignalWatcher::~SignalWatcher() {
  uv_signal_stop(&impl_->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->handle),
           [](uv_handle_t* h) { delete static_cast<Impl*>(h->data); });
}

}  // namespace itsuka::net
