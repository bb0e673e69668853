// time.format(ms, pattern) and time.parse(text): times as ms since the epoch, in UTC; and
// run.id, run.started_at, what the host knows of the run.
#include <fmt/format.h>

#include <cctype>
#include <ctime>
#include <string_view>

#include "stdlib/natives.h"

namespace flow::stdlib {

namespace {

// The strftime conversions time.format accepts: those that do not depend on the locale.
constexpr std::string_view kConversions = "YmdHMSjyeFTDuwGVgz%";

bool ValidPattern(VM& vm, std::string_view pattern) {
  if (pattern.size() > 1000) return vm.Raise("type", "time.format: the pattern is longer than 1000 characters");
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%') continue;
    if (i + 1 == pattern.size()) return vm.Raise("type", "time.format: the pattern ends with a lone %");
    char c = pattern[++i];
    if (c != 'L' && kConversions.find(c) == std::string_view::npos)
      return vm.Raise("type", fmt::format("time.format: %{} is not a conversion it knows (%Y %m %d %H %M %S %L %j %y %e "
                                          "%F %T %D %u %w %G %V %g %z %%)", c));
  }
  return true;
}

// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (Howard Hinnant's
// days_from_civil).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool LeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Reads exactly n digits at text[*at].
bool Digits(std::string_view text, size_t* at, int n, int64_t* out) {
  *out = 0;
  for (int i = 0; i < n; ++i, ++*at) {
    if (*at >= text.size() || !std::isdigit(static_cast<unsigned char>(text[*at]))) return false;
    *out = *out * 10 + (text[*at] - '0');
  }
  return true;
}

// ISO 8601: YYYY-MM-DD, then optionally T (or a space) HH:MM[:SS[.fraction]], then
// optionally Z or an offset ±HH:MM / ±HHMM. No zone means UTC.
bool ParseIso(std::string_view t, int64_t* ms) {
  size_t at = 0;
  int64_t y, mo, d, h = 0, mi = 0, s = 0, frac_ms = 0, offset_min = 0;
  if (!Digits(t, &at, 4, &y) || at >= t.size() || t[at++] != '-' || !Digits(t, &at, 2, &mo) || at >= t.size() ||
      t[at++] != '-' || !Digits(t, &at, 2, &d))
    return false;
  if (at < t.size() && (t[at] == 'T' || t[at] == 't' || t[at] == ' ')) {
    ++at;
    if (!Digits(t, &at, 2, &h) || at >= t.size() || t[at++] != ':' || !Digits(t, &at, 2, &mi)) return false;
    if (at < t.size() && t[at] == ':') {
      ++at;
      if (!Digits(t, &at, 2, &s)) return false;
      if (at < t.size() && (t[at] == '.' || t[at] == ',')) {
        ++at;
        int n = 0;
        for (; at < t.size() && std::isdigit(static_cast<unsigned char>(t[at])); ++at, ++n)
          if (n < 3) frac_ms = frac_ms * 10 + (t[at] - '0');
        if (n == 0) return false;
        for (; n < 3; ++n) frac_ms *= 10;
      }
    }
    if (at < t.size() && (t[at] == 'Z' || t[at] == 'z')) {
      ++at;
    } else if (at < t.size() && (t[at] == '+' || t[at] == '-')) {
      const int sign = t[at++] == '-' ? -1 : 1;
      int64_t oh, om;
      if (!Digits(t, &at, 2, &oh)) return false;
      if (at < t.size() && t[at] == ':') ++at;
      if (!Digits(t, &at, 2, &om) || oh > 23 || om > 59) return false;
      offset_min = sign * (oh * 60 + om);
    }
  }
  if (at != t.size()) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] + (mo == 2 && LeapYear(y)) || h > 23 || mi > 59 || s > 59)
    return false;
  *ms = ((DaysFromCivil(y, mo, d) * 24 + h) * 60 + mi - offset_min) * 60'000 + s * 1000 + frac_ms;
  return true;
}

}  // namespace

// time.format(ms, pattern): strftime's conversions that do not depend on the locale, in
// UTC, plus %L (milliseconds, 3 digits). time.format(ms, "%Y-%m-%dT%H:%M:%S.%LZ") is ISO 8601.
NativeResult TimeFormat(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kInt) return Raise(vm, "type", fmt::format("time.format takes ms as an int, not {}", TypeName(args[0].tag)));
  if (args[1].tag != Tag::kString) return Raise(vm, "type", "time.format takes a pattern string");
  const std::string& pattern = vm.heap().StringOf(args[1]);
  if (!ValidPattern(vm, pattern)) return kRaised;
  const int64_t ms = args[0].i;
  // Years 0 to 9999: what the conversions print as they should.
  if (ms < -62167219200000 || ms > 253402300799999) return Raise(vm, "type", "time.format: ms outside the years 0 to 9999");
  const int64_t millis = ((ms % 1000) + 1000) % 1000;
  const time_t seconds = static_cast<time_t>((ms - millis) / 1000);
  struct tm utc;
  gmtime_r(&seconds, &utc);
  // %L first (strftime does not know it), then strftime piece by piece.
  std::string expanded;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && pattern[i + 1] == 'L') {
      expanded += fmt::format("{:03}", millis);
      ++i;
    } else if (pattern[i] == '%') {
      char spec[3] = {'%', pattern[i + 1], '\0'};
      char buf[64];
      size_t n = std::strftime(buf, sizeof buf, spec, &utc);
      expanded.append(buf, n);
      ++i;
    } else {
      expanded += pattern[i];
    }
  }
  *out = vm.heap().NewString(std::move(expanded));
  return kDone;
}

// time.parse(text): ms since the epoch of an ISO 8601 date or date and time.
NativeResult TimeParse(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kString) return Raise(vm, "type", fmt::format("time.parse takes a string, not {}", TypeName(args[0].tag)));
  const std::string& text = vm.heap().StringOf(args[0]);
  int64_t ms;
  if (text.size() > 64 || !ParseIso(text, &ms))
    return Raise(vm, "time",
                 fmt::format("time.parse: \"{}\" is not an ISO 8601 date or time (2026-11-30, 2026-11-30T12:00:00Z, "
                             "2026-11-30T12:00:00.250+01:00)", text.size() > 64 ? text.substr(0, 61) + "..." : text));
  *out = Value::Int(ms);
  return kDone;
}

NativeResult RunId(VM& vm, Value*, int, Value* out) {
  std::string id = vm.host().RunId();
  *out = id.empty() ? Value::Null() : vm.heap().NewString(std::move(id));
  return kDone;
}

NativeResult RunStartedAt(VM& vm, Value*, int, Value* out) {
  *out = Value::Int(vm.host().RunStartedMs());
  return kDone;
}

}  // namespace flow::stdlib
