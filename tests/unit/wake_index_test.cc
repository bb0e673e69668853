// The wake index's file names (store/wake_index.cc): only names NoteWake writes are hints;
// anything else found in wake/ is left alone, never read as a time.
#include <gtest/gtest.h>

#include <cstdint>

#include "store/store.h"

namespace flow::store {
namespace {

TEST(WakeIndex, ParsesTheNamesNoteWakeWrites) {
  Store::WakeHint h;
  ASSERT_TRUE(Store::ParseWakeHint("0000001796049791495-t2", &h));
  EXPECT_EQ(h.wake_ms, 1796049791495);
  EXPECT_EQ(h.run_id, "t2");
  ASSERT_TRUE(Store::ParseWakeHint("9223372036854775807-r", &h));
  EXPECT_EQ(h.wake_ms, INT64_MAX);
}

TEST(WakeIndex, ATimePastInt64IsNoHint) {
  // 19 nines overflowed the signed sum: read as a time long past (due at once), and
  // undefined behaviour under UBSan.
  Store::WakeHint h;
  EXPECT_FALSE(Store::ParseWakeHint("9999999999999999999-long00", &h));
  EXPECT_FALSE(Store::ParseWakeHint("9223372036854775808-r", &h));
}

TEST(WakeIndex, GarbageNamesAreNoHints) {
  Store::WakeHint h;
  for (const char* name : {"", "garbage", "-", "12-", "-ghost", "0-ghost", "000000000000000000x-r",
                           "0000000000000000000_r", "0000000000000000000-", "0000000000000000000-bad name!",
                           "0000000000000000000-.hidden"})
    EXPECT_FALSE(Store::ParseWakeHint(name, &h)) << name;
}

}  // namespace
}  // namespace flow::store
