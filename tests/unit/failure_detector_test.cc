#include "core/failure_detector.h"

#include <gtest/gtest.h>

namespace itsuka::core {
namespace {

TEST(PhiAccrual, NothingToSuspectBeforeTheFirstHeartbeat) {
  PhiAccrualDetector d;
  EXPECT_EQ(d.Phi(1000000), 0);
}

TEST(PhiAccrual, RegularHeartbeatsKeepPhiLowAndSilenceRaisesIt) {
  PhiAccrualDetector d(200, 50);
  int64_t t = 0;
  for (int i = 0; i < 50; ++i, t += 200) d.Heartbeat(t);
  const int64_t last = t - 200;
  EXPECT_LT(d.Phi(last + 200), 1.0);  // on time
  double prev = 0;
  for (int64_t silence = 200; silence <= 2000; silence += 100) {
    double phi = d.Phi(last + silence);
    EXPECT_GE(phi, prev);  // monotone in the silence
    prev = phi;
  }
  EXPECT_GT(d.Phi(last + 1000), 8.0);  // five missed beats: suspected at threshold 8
  d.Heartbeat(last + 1000);
  EXPECT_LT(d.Phi(last + 1100), 1.0);  // back
}

TEST(PhiAccrual, JitteryPeersAreGivenMoreSlack) {
  PhiAccrualDetector steady(200, 10), jittery(200, 10);
  int64_t t = 0;
  for (int i = 0; i < 100; ++i) {
    steady.Heartbeat(i * 200);
    t += (i % 2) ? 50 : 350;  // same mean, large variance
    jittery.Heartbeat(t);
  }
  EXPECT_GT(steady.Phi(99 * 200 + 600), jittery.Phi(t + 600));
}

TEST(PhiAccrual, BusyTrafficIsLifeButDoesNotShrinkTheExpectedGap) {
  // A peer sends heartbeats every 200 ms and other messages every millisecond between.
  // Every message ends the silence, but only heartbeats teach the model: after the busy
  // traffic stops, a lull of a few hundred ms is not suspicious.
  PhiAccrualDetector d(200, 100);
  int64_t t = 0;
  for (int beat = 0; beat < 50; ++beat) {
    d.Heartbeat(t);
    for (int i = 1; i < 200; ++i) d.SignOfLife(t + i);
    t += 200;
  }
  const int64_t last = t - 1;  // the last message
  EXPECT_LT(d.Phi(last + 300), 1.0);
  EXPECT_GT(d.Phi(last + 1200), 8.0);  // a real silence is still found
  // Had every message been a sample, the expected gap would be 1 ms and the same lull
  // would convict.
  PhiAccrualDetector all(200, 100);
  for (int64_t i = 0; i < t; ++i) all.Heartbeat(i);
  EXPECT_GT(all.Phi(last + 700), 8.0);
  EXPECT_LT(d.Phi(last + 700), 8.0);
}

TEST(PhiAccrual, ASignOfLifeEndsTheSilence) {
  PhiAccrualDetector d(200, 50);
  for (int i = 0; i < 20; ++i) d.Heartbeat(i * 200);
  EXPECT_GT(d.Phi(19 * 200 + 2000), 8.0);
  d.SignOfLife(19 * 200 + 2000);
  EXPECT_LT(d.Phi(19 * 200 + 2100), 1.0);
  PhiAccrualDetector fresh;
  fresh.SignOfLife(5);
  EXPECT_TRUE(fresh.has_heartbeat());  // something to judge from now on
}

TEST(PhiAccrual, AnExtraPauseIsAcceptedOnTopOfTheModel) {
  PhiAccrualDetector d(200, 100);
  for (int i = 0; i < 50; ++i) d.Heartbeat(i * 200);
  const int64_t last = 49 * 200;
  EXPECT_GT(d.Phi(last + 1500), 8.0);
  EXPECT_LT(d.Phi(last + 1200, 1000), 1.0);
  EXPECT_GT(d.Phi(last + 3000, 1000), 8.0);  // only that much
  EXPECT_EQ(d.Phi(last + 1500, -500), d.Phi(last + 1500));  // negative means none
}

TEST(LocalPauseGuard, OnTimeTicksConvictAndAcceptNoPause) {
  LocalPauseGuard g(200, 2000);
  EXPECT_TRUE(g.Tick(1000));  // the first tick has nothing to be late against
  for (int64_t t = 1200; t <= 3000; t += 200) EXPECT_TRUE(g.Tick(t));
  EXPECT_EQ(g.acceptable_pause_ms(), 0);
  EXPECT_TRUE(g.Tick(3350));  // 150 ms late: within one interval
  EXPECT_TRUE(g.may_convict());
  EXPECT_EQ(g.acceptable_pause_ms(), 150);
}

TEST(LocalPauseGuard, ALateTickHoldsConvictionsAndItsLatenessIsAccepted) {
  LocalPauseGuard g(200, 2000, 5);
  int64_t t = 0;
  for (; t <= 1000; t += 200) g.Tick(t);
  t = 1000 + 200 + 900;  // the loop stalled: 900 ms late
  EXPECT_FALSE(g.Tick(t));
  EXPECT_FALSE(g.may_convict());
  EXPECT_EQ(g.acceptable_pause_ms(), 900);
  EXPECT_TRUE(g.Tick(t += 200));  // the next tick on time judges again
  EXPECT_EQ(g.acceptable_pause_ms(), 900);  // still remembered ...
  for (int i = 0; i < 4; ++i) g.Tick(t += 200);
  EXPECT_EQ(g.acceptable_pause_ms(), 0);  // ... for `window` ticks
}

TEST(LocalPauseGuard, TheAcceptedPauseIsCapped) {
  LocalPauseGuard g(200, 2000);
  g.Tick(0);
  EXPECT_FALSE(g.Tick(60000));  // a minute without a tick
  EXPECT_EQ(g.acceptable_pause_ms(), 2000);
  EXPECT_TRUE(g.Tick(60200));
  LocalPauseGuard back(200, 2000);
  back.Tick(5000);
  EXPECT_TRUE(back.Tick(4000));  // a clock that goes back is not a pause
  EXPECT_EQ(back.acceptable_pause_ms(), 0);
}

TEST(LocalPauseGuard, WithTheDetectorASilentPeerIsStillSuspectedSoon) {
  // This node's loop is fine; the peer stops: suspected within the same few intervals
  // as without the guard.
  LocalPauseGuard g(200, 2000);
  PhiAccrualDetector d(200, 100);
  int64_t t = 0;
  for (; t <= 10000; t += 200) {
    g.Tick(t);
    d.Heartbeat(t);
  }
  const int64_t last = t - 200;
  int64_t convicted = -1;
  for (; t <= 20000 && convicted < 0; t += 200) {
    g.Tick(t);
    if (g.may_convict() && d.Phi(t, g.acceptable_pause_ms()) > 8.0) convicted = t;
  }
  ASSERT_GE(convicted, 0);
  EXPECT_LE(convicted - last, 1000);
}

}  // namespace
}  // namespace itsuka::core
