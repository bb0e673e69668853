// Issue 12: cron expressions (5 fields, UTC), schedule ticks and records.
#include <gtest/gtest.h>

#include <ctime>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/cron.h"
#include "store/keys.h"
#include "store/store.h"
#include "vm/base/record.h"
#include "runtime/schedule.h"
#include "store/queues.h"
#include "store/schedules.h"
#include "temp_dir.h"

namespace flow::runtime {
namespace {

int64_t Utc(int year, int month, int day, int hour, int minute) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

int64_t Next(const char* cron, int64_t at) {
  Result<CronSpec> spec = ParseCron(cron);
  EXPECT_TRUE(spec.ok()) << cron << ": " << spec.status().message();
  return CronAtOrAfter(*spec, at).value_or(-1);
}

std::string ErrorOf(const char* cron) {
  Result<CronSpec> spec = ParseCron(cron);
  return spec.ok() ? "" : spec.status().message();
}

TEST(Cron, EveryMinuteRoundsUpToTheNextWholeMinute) {
  EXPECT_EQ(Next("* * * * *", Utc(2026, 11, 30, 10, 0) + 1), Utc(2026, 11, 30, 10, 1));
  EXPECT_EQ(Next("* * * * *", Utc(2026, 11, 30, 10, 0)), Utc(2026, 11, 30, 10, 0)) << "at or after";
}

TEST(Cron, NumbersRangesListsAndSteps) {
  const int64_t from = Utc(2026, 11, 30, 10, 7);
  EXPECT_EQ(Next("*/15 * * * *", from), Utc(2026, 11, 30, 10, 15));
  EXPECT_EQ(Next("5,50 * * * *", from), Utc(2026, 11, 30, 10, 50));
  EXPECT_EQ(Next("0 9-17/4 * * *", from), Utc(2026, 11, 30, 13, 0));
  EXPECT_EQ(Next("30 2 * * *", from), Utc(2026, 12, 1, 2, 30));
  EXPECT_EQ(Next("10/20 * * * *", from), Utc(2026, 11, 30, 10, 10)) << "N/S: N, N+S, ... to the end";
  EXPECT_EQ(Next("0 0 1 1 *", from), Utc(2027, 1, 1, 0, 0));
  EXPECT_EQ(Next("0 0 29 2 *", from), Utc(2028, 2, 29, 0, 0)) << "the next leap day";
}

TEST(Cron, DaysOfWeekAndTheirOrWithDaysOfMonth) {
  // 2026-11-30 is a Monday.
  const int64_t from = Utc(2026, 11, 30, 10, 7);
  EXPECT_EQ(Next("0 8 * * 0", from), Utc(2026, 12, 6, 8, 0)) << "Sunday";
  EXPECT_EQ(Next("0 8 * * 7", from), Utc(2026, 12, 6, 8, 0)) << "7 is Sunday too";
  EXPECT_EQ(Next("0 8 * * 1-5", from), Utc(2026, 12, 1, 8, 0));
  EXPECT_EQ(Next("0 8 15 * 5", from), Utc(2026, 12, 4, 8, 0)) << "both restricted: either matches (Friday 4th)";
  EXPECT_EQ(Next("0 8 3 * *", from), Utc(2026, 12, 3, 8, 0));
}

TEST(Cron, BadExpressionsSayWhichFieldAndWhy) {
  EXPECT_NE(ErrorOf("* * * *").find("5 fields"), std::string::npos) << ErrorOf("* * * *");
  EXPECT_NE(ErrorOf("60 * * * *").find("field 1 (minute) `60`: 60 is out of range 0-59"), std::string::npos)
      << ErrorOf("60 * * * *");
  EXPECT_NE(ErrorOf("* 24 * * *").find("hour"), std::string::npos);
  EXPECT_NE(ErrorOf("* * 0 * *").find("day-of-month"), std::string::npos);
  EXPECT_NE(ErrorOf("* * * 13 *").find("month"), std::string::npos);
  EXPECT_NE(ErrorOf("* * * * 8").find("day-of-week"), std::string::npos);
  EXPECT_NE(ErrorOf("*/0 * * * *").find("step"), std::string::npos);
  EXPECT_NE(ErrorOf("5-1 * * * *").find("backwards"), std::string::npos);
  EXPECT_NE(ErrorOf("a * * * *").find("not a number"), std::string::npos);
  EXPECT_NE(ErrorOf("1,,2 * * * *").find("empty item"), std::string::npos);
  EXPECT_NE(ErrorOf("MON * * * *").find("not a number"), std::string::npos);
  EXPECT_NE(ErrorOf("0 0 30 2 *").find("never fires"), std::string::npos) << ErrorOf("0 0 30 2 *");
}

store::ScheduleRecord Every(int64_t every_ms) {
  store::ScheduleRecord s;
  s.name = "s";
  s.code_hash = std::string(32, 'a');
  s.every_ms = every_ms;
  return s;
}

TEST(Schedule, EveryTicksAtMultiplesSinceTheEpochAndNotBeforeItsStart) {
  store::ScheduleRecord s = Every(3'600'000);
  EXPECT_EQ(TickAtOrAfter(s, Utc(2026, 11, 30, 10, 7)), Utc(2026, 11, 30, 11, 0));
  s.start_ms = Utc(2030, 1, 1, 0, 30);
  EXPECT_EQ(TickAtOrAfter(s, Utc(2026, 11, 30, 10, 7)), Utc(2030, 1, 1, 1, 0));
  EXPECT_EQ(TickRunId("nightly", Utc(2030, 1, 1, 1, 0)), "nightly-20300101T010000Z");
}

TEST(Schedule, RecordRoundTripsAndDamageIsCorruption) {
  store::ScheduleRecord s = Every(60'000);
  s.args = {{"a", "1"}};
  s.overlap = store::Overlap::kQueue;
  s.next_ms = 123;
  s.last_run_id = "s-x";
  std::string bytes = store::EncodeSchedule(s);
  Result<store::ScheduleRecord> back = store::DecodeSchedule(bytes, "it");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->args, s.args);
  EXPECT_EQ(back->overlap, store::Overlap::kQueue);
  EXPECT_EQ(back->next_ms, 123);
  EXPECT_EQ(back->last_run_id, "s-x");
  bytes[bytes.size() - 3] ^= 1;
  EXPECT_TRUE(store::DecodeSchedule(bytes, "it").status().IsCorruption());
}

// Queue caps and slots on both stores: tests/unit/pg_store_test.cc (StoreOnBoth).

TEST(QueuedRecord, KeepsQueueAndAfterRunAndVersion3StillReads) {
  testing::TempDir dir;
  store::Store st = store::Store::Open(dir.path(), true).value();
  ASSERT_TRUE(st.CreateRunDir("r1").ok());
  store::RunRecord r;
  r.id = "r1";
  r.code_hash = store::CodeHash("code");
  r.status = store::RunStatus::kQueued;
  r.queue = "q";
  r.after_run = "r0";
  ASSERT_TRUE(st.WriteRun(r).ok());
  Result<store::RunRecord> back = st.ReadRun("r1");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->status, store::RunStatus::kQueued);
  EXPECT_EQ(back->queue, "q");
  EXPECT_EQ(back->after_run, "r0");
  // Version 3: the same payload without the two trailing fields (two empty bytes: 0, 0).
  r.queue.clear();
  r.after_run.clear();
  r.status = store::RunStatus::kSuspended;
  ASSERT_TRUE(st.WriteRun(r).ok());
  std::ifstream in(store::RunFilePath(dir.path(), "r1", store::kRunRecordFile), std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  std::string payload = bytes.str().substr(kRecordEnvelope);
  payload.resize(payload.size() - 2);
  Result<store::RunRecord> v3 = store::DecodeRunRecord(SealRecord(3, payload), "a version 3 record");
  ASSERT_TRUE(v3.ok()) << v3.status().message();
  EXPECT_EQ(v3->status, store::RunStatus::kSuspended);
  EXPECT_EQ(v3->queue, "");
}

}  // namespace
}  // namespace flow::runtime
