// Cron expressions of `flow schedule add --cron`: the 5 standard fields, in UTC.
//
//   minute (0-59)  hour (0-23)  day-of-month (1-31)  month (1-12)  day-of-week (0-7; 0 and 7: Sunday)
//
// Each field is `*` or a comma-separated list of items: N, A-B, `*`/S, N/S (N, N+S, ... to
// the field's end) or A-B/S. As in every cron, when both day fields are restricted (not
// `*`), a day matches if either does.
#pragma once
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "vm/base/status.h"

namespace flow::runtime {

struct CronSpec {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days_of_month;  // 1..31
  std::bitset<13> months;         // 1..12
  std::bitset<7> days_of_week;    // 0..6, Sunday 0
  bool any_day_of_month = true;   // the field was `*`
  bool any_day_of_week = true;
};

// InvalidArgument naming the field and what is wrong with it; also for an expression that
// never fires (30 2: the 30th of February).
Result<CronSpec> ParseCron(std::string_view text);
// The first minute at or after `ms` (ms since the epoch, UTC) that the expression matches;
// nullopt if none within 8 years.
std::optional<int64_t> CronAtOrAfter(const CronSpec& spec, int64_t ms);

}  // namespace flow::runtime
