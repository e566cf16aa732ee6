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

}  // namespace
}  // namespace itsuka::core
