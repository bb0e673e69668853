// Cron expressions (runtime/cron.h).
#include "runtime/cron.h"

#include <fmt/format.h>

#include <charconv>
#include <vector>

#include "vm/base/floor_div.h"

namespace flow::runtime {

namespace {

struct Field {
  const char* name;
  int lo, hi;
};
constexpr Field kFields[5] = {{"minute", 0, 59}, {"hour", 0, 23}, {"day-of-month", 1, 31}, {"month", 1, 12},
                              {"day-of-week", 0, 7}};

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kDayMs = 86'400'000;

Status FieldError(int index, std::string_view text, const std::string& why) {
  return Status::InvalidArgument(
      fmt::format("cron field {} ({}) `{}`: {}", index + 1, kFields[index].name, text, why));
}

bool ParseNumber(std::string_view text, int* out) {
  if (text.empty() || text.size() > 4) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// One comma-separated item of field `index`: sets its values in `bits` (indexed lo..hi).
Status ParseItem(int index, std::string_view field, std::string_view item, std::vector<bool>* bits) {
  const Field& f = kFields[index];
  int step = 1;
  if (size_t slash = item.find('/'); slash != std::string_view::npos) {
    std::string_view s = item.substr(slash + 1);
    if (!ParseNumber(s, &step) || step < 1)
      return FieldError(index, field, fmt::format("the step `{}` is not a whole number of at least 1", s));
    item = item.substr(0, slash);
  }
  int from = f.lo, to = f.hi;
  if (item != "*") {
    size_t dash = item.find('-');
    std::string_view a = item.substr(0, dash);
    if (!ParseNumber(a, &from))
      return FieldError(index, field, fmt::format("`{}` is not a number (numbers, ranges A-B, lists, steps /N and *)", a));
    to = from;
    if (dash != std::string_view::npos) {
      std::string_view b = item.substr(dash + 1);
      if (!ParseNumber(b, &to)) return FieldError(index, field, fmt::format("`{}` is not a number", b));
    } else if (step != 1) {
      to = f.hi;  // N/S: from N to the field's end
    }
    for (int v : {from, to})
      if (v < f.lo || v > f.hi) return FieldError(index, field, fmt::format("{} is out of range {}-{}", v, f.lo, f.hi));
    if (from > to) return FieldError(index, field, fmt::format("the range {}-{} is backwards", from, to));
  }
  for (int v = from; v <= to; v += step) (*bits)[static_cast<size_t>(v - f.lo)] = true;
  return Status::Ok();
}

Status ParseField(int index, std::string_view field, std::vector<bool>* bits, bool* any) {
  const Field& f = kFields[index];
  bits->assign(static_cast<size_t>(f.hi - f.lo + 1), false);
  *any = field == "*";
  size_t start = 0;
  while (true) {
    size_t comma = field.find(',', start);
    std::string_view item = field.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) return FieldError(index, field, "an empty item");
    if (Status s = ParseItem(index, field, item, bits); !s.ok()) return s;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Status::Ok();
}

// Days since the epoch -> year, month (1-12), day (1-31) (Howard Hinnant's civil_from_days).
void CivilFromDays(int64_t z, int* year, int* month, int* day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *year = static_cast<int>(yoe + era * 400 + (*month <= 2));
}

bool DayMatches(const CronSpec& spec, int64_t day) {
  int year, month, dom;
  CivilFromDays(day, &year, &month, &dom);
  if (!spec.months[static_cast<size_t>(month)]) return false;
  const int dow = static_cast<int>(((day % 7) + 7 + 4) % 7);  // 1970-01-01 was a Thursday
  const bool by_month = spec.days_of_month[static_cast<size_t>(dom)];
  const bool by_week = spec.days_of_week[static_cast<size_t>(dow)];
  if (spec.any_day_of_month) return by_week;
  if (spec.any_day_of_week) return by_month;
  return by_month || by_week;
}
}  // namespace

Result<CronSpec> ParseCron(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  if (fields.size() != 5)
    return Status::InvalidArgument(fmt::format(
        "a cron expression has 5 fields (minute hour day-of-month month day-of-week), `{}` has {}", text, fields.size()));
  CronSpec spec;
  std::vector<bool> bits;
  bool any = false;
  for (int f = 0; f < 5; ++f) {
    if (Status s = ParseField(f, fields[static_cast<size_t>(f)], &bits, &any); !s.ok()) return s;
    for (size_t v = 0; v < bits.size(); ++v) {
      if (!bits[v]) continue;
      const int value = static_cast<int>(v) + kFields[f].lo;
      switch (f) {
        case 0: spec.minutes.set(static_cast<size_t>(value)); break;
        case 1: spec.hours.set(static_cast<size_t>(value)); break;
        case 2: spec.days_of_month.set(static_cast<size_t>(value)); break;
        case 3: spec.months.set(static_cast<size_t>(value)); break;
        case 4: spec.days_of_week.set(static_cast<size_t>(value % 7)); break;
      }
    }
    if (f == 2) spec.any_day_of_month = any;
    if (f == 4) spec.any_day_of_week = any;
  }
  if (!CronAtOrAfter(spec, 0))
    return Status::InvalidArgument(fmt::format("the cron expression `{}` never fires (no such day)", text));
  return spec;
}

std::optional<int64_t> CronAtOrAfter(const CronSpec& spec, int64_t ms) {
  const int64_t first_minute = FloorDiv(ms + kMinuteMs - 1, kMinuteMs);  // rounded up to a whole minute
  const int64_t first_day = FloorDiv(first_minute * kMinuteMs, kDayMs);
  for (int64_t day = first_day; day < first_day + 8 * 366 + 1; ++day) {
    if (!DayMatches(spec, day)) continue;
    const int64_t from = day == first_day ? first_minute - day * 1440 : 0;  // minute of the day
    for (int64_t m = from; m < 1440; ++m)
      if (spec.hours[static_cast<size_t>(m / 60)] && spec.minutes[static_cast<size_t>(m % 60)])
        return (day * 1440 + m) * kMinuteMs;
  }
  return std::nullopt;
}

}  // namespace flow::runtime
