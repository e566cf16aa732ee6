#include "net/loop.h"

#include <gtest/gtest.h>

#include <string>

namespace itsuka::net {
namespace {

TEST(Loop, TheAfterPollHookRunsPromptlyWhenATimerWantsIt) {
  // A timer leaves its work to the after-poll hook. Nothing else is due for 5 s, so a
  // poll allowed to block would wait that long; WantAfterPoll keeps it from blocking.
  Loop loop;
  std::string order;
  bool due = false;
  Timer work(loop, [&] {
    order += "timer ";
    due = true;
    loop.WantAfterPoll();
  });
  Timer fallback(loop, [&] {
    order += "fallback ";
    loop.Stop();
  });
  loop.SetAfterPollHook([&] {
    if (!due) return;
    due = false;
    order += "hook ";
    work.Stop();
    fallback.Stop();
  });
  work.Start(10, 0);
  fallback.Start(5000, 0);
  const int64_t start = loop.NowMs();
  loop.Run();  // ends when no handle is active: both timers stopped by the hook
  EXPECT_EQ(order, "timer hook ");
  EXPECT_LT(loop.NowMs() - start, 4000);
}

TEST(Loop, TheAfterPollHookRunsBeforeTheAfterIoHookOfTheSameCheck) {
  Loop loop;
  std::string order;
  bool due = false;
  Timer t(loop, [&] {
    due = true;
    loop.WantAfterPoll();
  });
  loop.SetAfterIoHook([&] {
    if (!order.empty() && order.back() == 'p') order += "i";
  });
  loop.SetAfterPollHook([&] {
    if (!due) return;
    due = false;
    order += "p";
  });
  t.Start(1, 0);
  loop.Run();
  EXPECT_EQ(order, "pi");
}

}  // namespace
}  // namespace itsuka::net
