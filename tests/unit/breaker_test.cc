// The circuit breaker's state machine (vm/breaker.h), on a clock the test moves by hand:
// closed -> open after `failures` failures within `window`; open refuses until `cooldown`
// has passed, then admits one trial (half-open); the trial's success closes it, its
// failure opens it again; a trial that never reports expires after another cooldown.
#include "vm/breaker.h"

#include <gtest/gtest.h>

namespace flow {
namespace {

using Phase = BreakerState::Phase;

// 3 failures within 1,000 ms open it; it stays open 100 ms.
const VmHost::BreakerPolicy kPolicy{.failures = 3, .window_ms = 1000, .cooldown_ms = 100};

// A breaker opened by three failures at t = 0, 10, 20.
BreakerState Opened() {
  BreakerState b;
  for (int64_t t : {0, 10, 20}) b.Record(t, kPolicy, false);
  return b;
}

TEST(Breaker, StaysClosedBelowTheLimit) {
  BreakerState b;
  b.Record(0, kPolicy, false);
  b.Record(10, kPolicy, false);
  EXPECT_EQ(b.phase, Phase::kClosed);
  EXPECT_TRUE(b.Admit(11, kPolicy));
  EXPECT_EQ(b.phase, Phase::kClosed);
}

TEST(Breaker, OpensWhenFailuresWithinTheWindowReachTheLimit) {
  BreakerState b = Opened();
  EXPECT_EQ(b.phase, Phase::kOpen);
  EXPECT_EQ(b.changed_at, 20);
  EXPECT_FALSE(b.Admit(21, kPolicy));
  EXPECT_FALSE(b.Admit(119, kPolicy));  // the cooldown runs from the failure that opened it
  EXPECT_EQ(b.phase, Phase::kOpen);
}

TEST(Breaker, FailuresOlderThanTheWindowDoNotCount) {
  BreakerState b;
  b.Record(0, kPolicy, false);
  b.Record(500, kPolicy, false);
  b.Record(1000, kPolicy, false);  // the one at 0 is exactly a window old: out
  EXPECT_EQ(b.phase, Phase::kClosed);
  EXPECT_EQ(b.failures.size(), 2u);
  b.Record(1400, kPolicy, false);  // 500, 1000, 1400: three within 1,000 ms
  EXPECT_EQ(b.phase, Phase::kOpen);
}

TEST(Breaker, SuccessesWhileClosedDoNotHideFailures) {
  // Failures are counted within the window, not in a row.
  BreakerState b;
  b.Record(0, kPolicy, false);
  b.Record(1, kPolicy, true);
  b.Record(2, kPolicy, false);
  b.Record(3, kPolicy, true);
  b.Record(4, kPolicy, false);
  EXPECT_EQ(b.phase, Phase::kOpen);
}

TEST(Breaker, AfterTheCooldownOneTrialGoesThrough) {
  BreakerState b = Opened();
  EXPECT_TRUE(b.Admit(120, kPolicy));
  EXPECT_EQ(b.phase, Phase::kHalfOpen);
  EXPECT_EQ(b.changed_at, 120);
  // While the trial is under way every other call is refused.
  EXPECT_FALSE(b.Admit(121, kPolicy));
  EXPECT_FALSE(b.Admit(219, kPolicy));
  EXPECT_EQ(b.phase, Phase::kHalfOpen);
}

TEST(Breaker, ATrialThatSucceedsClosesIt) {
  BreakerState b = Opened();
  ASSERT_TRUE(b.Admit(120, kPolicy));
  b.Record(130, kPolicy, true);
  EXPECT_EQ(b.phase, Phase::kClosed);
  EXPECT_TRUE(b.failures.empty());
  EXPECT_TRUE(b.Admit(131, kPolicy));
  EXPECT_TRUE(b.Admit(132, kPolicy));
  // The failures that opened it are forgotten: it takes three new ones to open it again.
  b.Record(140, kPolicy, false);
  b.Record(150, kPolicy, false);
  EXPECT_EQ(b.phase, Phase::kClosed);
  b.Record(160, kPolicy, false);
  EXPECT_EQ(b.phase, Phase::kOpen);
}

TEST(Breaker, ATrialThatFailsOpensItAgainForAFullCooldown) {
  BreakerState b = Opened();
  ASSERT_TRUE(b.Admit(120, kPolicy));
  b.Record(150, kPolicy, false);  // one failure is enough in half-open
  EXPECT_EQ(b.phase, Phase::kOpen);
  EXPECT_EQ(b.changed_at, 150);
  EXPECT_FALSE(b.Admit(249, kPolicy));
  EXPECT_TRUE(b.Admit(250, kPolicy));
  EXPECT_EQ(b.phase, Phase::kHalfOpen);
}

TEST(Breaker, ATrialThatNeverReportsExpiresAfterACooldown) {
  // Its process died: after another cooldown, one new trial is admitted.
  BreakerState b = Opened();
  ASSERT_TRUE(b.Admit(120, kPolicy));
  EXPECT_FALSE(b.Admit(219, kPolicy));
  EXPECT_TRUE(b.Admit(220, kPolicy));
  EXPECT_EQ(b.phase, Phase::kHalfOpen);
  EXPECT_EQ(b.changed_at, 220);
  EXPECT_FALSE(b.Admit(221, kPolicy));
}

TEST(Breaker, LateResultsWhileOpenChangeNothing) {
  // A call admitted before it opened reports after: the breaker stays open, its cooldown unmoved.
  BreakerState b = Opened();
  b.Record(50, kPolicy, true);
  b.Record(60, kPolicy, false);
  EXPECT_EQ(b.phase, Phase::kOpen);
  EXPECT_EQ(b.changed_at, 20);
  EXPECT_TRUE(b.Admit(120, kPolicy));
}

// Durations near INT64_MAX saturate (never wrap into the past): a cooldown that long keeps
// the breaker open (and a trial under way) for good; a window that long counts every failure.
TEST(Breaker, DurationsNearInt64MaxNeverWrap) {
  const VmHost::BreakerPolicy forever{.failures = 2, .window_ms = INT64_MAX, .cooldown_ms = INT64_MAX};
  const int64_t now = 1'764'000'000'000;  // ms since the epoch, as the runtime's clock gives
  BreakerState b;
  b.Record(1, forever, false);
  b.Record(now, forever, false);
  EXPECT_EQ(b.phase, Phase::kOpen);
  EXPECT_FALSE(b.Admit(now + 1, forever));
  EXPECT_FALSE(b.Admit(INT64_MAX - 1, forever));
  b.phase = Phase::kHalfOpen;
  EXPECT_FALSE(b.Admit(now + 1, forever));
  EXPECT_EQ(b.changed_at, now);
}

TEST(Breaker, StateRoundTripsThroughItsEncoding) {
  BreakerState closed;
  closed.Record(7, kPolicy, false);
  closed.Record(9, kPolicy, false);
  BreakerState half = Opened();
  ASSERT_TRUE(half.Admit(500, kPolicy));
  for (const BreakerState& b : {closed, Opened(), half}) {
    BreakerState back;
    ASSERT_TRUE(back.Decode(b.Encode()));
    EXPECT_EQ(back.phase, b.phase);
    EXPECT_EQ(back.changed_at, b.changed_at);
    EXPECT_EQ(back.failures, b.failures);
  }
}

TEST(Breaker, DamagedStateIsRefused) {
  BreakerState b;
  b.Record(7, kPolicy, false);
  std::string bytes = b.Encode();
  BreakerState back;
  EXPECT_FALSE(back.Decode(bytes.substr(0, bytes.size() - 1))) << "truncated";
  EXPECT_FALSE(back.Decode(bytes + "x")) << "trailing bytes";
  std::string bad_phase = bytes;
  bad_phase[0] = 3;
  EXPECT_FALSE(back.Decode(bad_phase)) << "unknown phase";
  EXPECT_FALSE(back.Decode("")) << "empty";
}

}  // namespace
}  // namespace flow
