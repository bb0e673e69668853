// A shared limit's state (vm/limit.h), on clocks the test moves by hand: at most N holders;
// at most R starts per window, the next start allowed exactly when the window has room;
// waiters served in order of arrival, an absent one skipped but first again when back;
// a holder that enters again (a run resumed after a crash) keeps its one slot; holders
// and waiters of ended runs dropped; the encoding round-trips and refuses damage.
#include "vm/limit.h"

#include <gtest/gtest.h>

#include <set>

namespace flow {
namespace {

using Verdict = LimitState::Verdict;

struct Fixture {
  LimitState state;
  std::set<std::string> ended, absent;
  LimitState::World world{[this](const std::string& run) { return ended.count(run) > 0; },
                          [this](const LimitState::Entry& e) { return absent.count(e.run) == 0; }};
  Verdict Enter(const std::string& run, int64_t now, const VmHost::LimitPolicy& p, uint32_t depth = 0) {
    return state.Enter({run, "", depth}, now, now, p, world).verdict;
  }
};

const VmHost::LimitPolicy kTwoAtOnce{.concurrency = 2};
const VmHost::LimitPolicy kOneAtOnce{.concurrency = 1};
const VmHost::LimitPolicy kTwoPerSecond{.rate = 2, .per_ms = 1000};

TEST(Limit, AdmitsUpToConcurrency) {
  Fixture f;
  EXPECT_EQ(f.Enter("a", 0, kTwoAtOnce), Verdict::kAdmitted);
  EXPECT_EQ(f.Enter("b", 0, kTwoAtOnce), Verdict::kAdmitted);
  EXPECT_EQ(f.Enter("c", 0, kTwoAtOnce), Verdict::kFull);
  EXPECT_EQ(f.state.holders.size(), 2u);
  EXPECT_TRUE(f.state.Leave({"a", "", 0}));
  EXPECT_EQ(f.Enter("c", 1, kTwoAtOnce), Verdict::kAdmitted);
  EXPECT_TRUE(f.state.waiting.empty());
}

TEST(Limit, EnteringAgainKeepsItsOneSlot) {
  Fixture f;
  EXPECT_EQ(f.Enter("a", 0, kOneAtOnce), Verdict::kAdmitted);
  EXPECT_EQ(f.Enter("a", 5, kOneAtOnce), Verdict::kAdmitted);  // resumed after a crash
  EXPECT_EQ(f.state.holders.size(), 1u);
  EXPECT_EQ(f.Enter("a", 5, kOneAtOnce, /*depth=*/1), Verdict::kFull);  // a nested body is another
}

TEST(Limit, RateFreesExactlyWhenTheWindowHasRoom) {
  Fixture f;
  EXPECT_EQ(f.Enter("a", 0, kTwoPerSecond), Verdict::kAdmitted);
  f.state.Leave({"a", "", 0});
  EXPECT_EQ(f.Enter("b", 300, kTwoPerSecond), Verdict::kAdmitted);
  f.state.Leave({"b", "", 0});
  LimitState::Decision d = f.state.Enter({"c", "", 0}, 400, 400, kTwoPerSecond, f.world);
  EXPECT_EQ(d.verdict, Verdict::kRate);
  EXPECT_EQ(d.free_at, 1000);
  EXPECT_EQ(LimitState::RetryAt(d, 400), 1000);
  EXPECT_EQ(f.Enter("c", 999, kTwoPerSecond), Verdict::kRate);
  EXPECT_EQ(f.Enter("c", 1000, kTwoPerSecond), Verdict::kAdmitted);
  EXPECT_EQ(f.state.starts, (std::vector<int64_t>{300, 1000}));
}

TEST(Limit, WaitersGoInOrderOfArrival) {
  Fixture f;
  EXPECT_EQ(f.Enter("a", 0, kOneAtOnce), Verdict::kAdmitted);
  EXPECT_EQ(f.Enter("b", 1, kOneAtOnce), Verdict::kFull);
  EXPECT_EQ(f.Enter("c", 2, kOneAtOnce), Verdict::kInLine);
  f.state.Leave({"a", "", 0});
  EXPECT_EQ(f.Enter("c", 3, kOneAtOnce), Verdict::kInLine);  // b, ahead, is trying
  EXPECT_EQ(f.Enter("b", 4, kOneAtOnce), Verdict::kAdmitted);
  f.state.Leave({"b", "", 0});
  EXPECT_EQ(f.Enter("c", 5, kOneAtOnce), Verdict::kAdmitted);
}

TEST(Limit, AnAbsentWaiterKeepsItsPlaceWithoutHoldingUpOthers) {
  Fixture f;
  EXPECT_EQ(f.Enter("a", 0, kOneAtOnce), Verdict::kAdmitted);
  EXPECT_EQ(f.Enter("b", 1, kOneAtOnce), Verdict::kFull);
  EXPECT_EQ(f.Enter("c", 2, kOneAtOnce), Verdict::kInLine);
  f.absent.insert("b");  // b's run suspended
  f.state.Leave({"a", "", 0});
  EXPECT_EQ(f.Enter("c", 3, kOneAtOnce), Verdict::kAdmitted);
  EXPECT_EQ(f.Enter("d", 4, kOneAtOnce), Verdict::kFull);
  f.absent.clear();  // b is back: first in line, before d
  f.state.Leave({"c", "", 0});
  EXPECT_EQ(f.Enter("d", 5, kOneAtOnce), Verdict::kInLine);
  EXPECT_EQ(f.Enter("b", 6, kOneAtOnce), Verdict::kAdmitted);
}

TEST(Limit, EndedRunsFreeTheirSlotsAndPlaces) {
  Fixture f;
  EXPECT_EQ(f.Enter("a", 0, kOneAtOnce), Verdict::kAdmitted);
  EXPECT_EQ(f.Enter("b", 1, kOneAtOnce), Verdict::kFull);
  EXPECT_EQ(f.Enter("c", 2, kOneAtOnce), Verdict::kInLine);
  f.ended = {"a", "b"};  // a completed (or was deleted); b was cancelled while it waited
  f.absent = {"b"};
  EXPECT_EQ(f.Enter("c", 3, kOneAtOnce), Verdict::kAdmitted);
  EXPECT_TRUE(f.state.waiting.empty());
  EXPECT_EQ(f.state.holders.size(), 1u);
}

TEST(Limit, EncodingRoundTripsAndRefusesDamage) {
  Fixture f;
  f.Enter("a", 10, {.concurrency = 1, .rate = 5, .per_ms = 1000});
  f.Enter("b", 20, {.concurrency = 1, .rate = 5, .per_ms = 1000});
  std::string bytes = f.state.Encode();
  LimitState back;
  ASSERT_TRUE(back.Decode(bytes));
  EXPECT_EQ(back.Encode(), bytes);
  EXPECT_EQ(back.holders.size(), 1u);
  EXPECT_EQ(back.waiting.size(), 1u);
  EXPECT_EQ(back.starts, (std::vector<int64_t>{10}));
  for (size_t n = 0; n < bytes.size(); ++n) EXPECT_FALSE(LimitState().Decode(bytes.substr(0, n))) << n;
  std::string other_version = bytes;
  other_version[0] = 2;
  EXPECT_FALSE(LimitState().Decode(other_version));
}

}  // namespace
}  // namespace flow
