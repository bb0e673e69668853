#include "cli/options.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

#include "store/store.h"

namespace flow::cli {

namespace {

// Longer than any budget or wait could mean (about 31,700 years), and far from overflow
// when added to a clock reading.
constexpr int64_t kMaxDurationMs = 1'000'000'000'000'000;

size_t LeadingDigits(const std::string& text) {
  size_t n = 0;
  while (n < text.size() && std::isdigit(static_cast<unsigned char>(text[n]))) ++n;
  return n;
}

}  // namespace

bool ParseDuration(const std::string& text, int64_t* ms, std::string* error) {
  constexpr const char* kForms = "250ms, 5s, 2m, 1h, 1d";
  size_t digits = LeadingDigits(text);
  if (digits == 0) {
    *error = fmt::format("takes a duration ({}), got `{}`", kForms, text);
    return false;
  }
  std::string unit = text.substr(digits);
  if (unit.empty()) {
    *error = fmt::format("takes a duration with a unit ({}): did you mean {}s?", kForms, text);
    return false;
  }
  int64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60'000 : unit == "h" ? 3'600'000
                : unit == "d" ? 86'400'000 : 0;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (scale == 0) {
    *error = fmt::format("takes a duration ({}), got `{}`", kForms, text);
    return false;
  }
  if (ec != std::errc() || n > kMaxDurationMs / scale) {
    *error = fmt::format("`{}` is too long (at most {}ms)", text, kMaxDurationMs);
    return false;
  }
  *ms = n * scale;
  return true;
}

bool ParseSize(const std::string& text, uint64_t* bytes, std::string* error) {
  size_t digits = LeadingDigits(text);
  std::string unit = text.substr(digits);
  if (unit.size() > 1 && (unit.substr(1) == "iB" || unit.substr(1) == "B")) unit = unit.substr(0, 1);
  int shift = unit == "K" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : unit == "T" ? 40 : -1;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (digits == 0 || shift < 0 || ec != std::errc() || n == 0 || n > (static_cast<uint64_t>(INT64_MAX) >> shift)) {
    *error = digits > 0 && digits == text.size()
                 ? fmt::format("takes a size with its unit (512M, 2G): did you mean {}M?", text)
                 : fmt::format("takes a size with its unit (512M, 2G), got `{}`", text);
    return false;
  }
  *bytes = n << shift;
  return true;
}

bool ParseCount(const std::string& text, uint64_t* n, std::string* error) {
  size_t digits = LeadingDigits(text);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (digits == 0 || digits != text.size() || ec != std::errc() || value == 0 ||
      value > static_cast<uint64_t>(INT64_MAX)) {
    *error = fmt::format("takes a whole number from 1 to {}, got `{}`", INT64_MAX, text);
    return false;
  }
  *n = value;
  return true;
}

CLI::Validator DurationValue() {
  return CLI::Validator(
      [](std::string& text) {
        int64_t ms;
        std::string error;
        return ParseDuration(text, &ms, &error) ? std::string() : error;
      },
      "DURATION");
}

// A budget's duration: 0 would silently mean no deadline (as a 0 count would no limit).
CLI::Validator PositiveDurationValue() {
  return CLI::Validator(
      [](std::string& text) {
        int64_t ms = 0;
        std::string error;
        if (!ParseDuration(text, &ms, &error)) return error;
        return ms > 0 ? std::string() : fmt::format("takes a duration of at least 1ms, got `{}`", text);
      },
      "DURATION");
}

CLI::Validator CountValue() {
  return CLI::Validator(
      [](std::string& text) {
        uint64_t n;
        std::string error;
        return ParseCount(text, &n, &error) ? std::string() : error;
      },
      "N");
}

bool ParseKeepCheckpoints(std::string_view text, uint32_t* keep, std::string* error) {
  if (text == "all") return *keep = flow::store::kKeepAllCheckpoints, true;
  if (text == "last") return *keep = 1, true;
  uint64_t n;
  if (!ParseCount(std::string(text), &n, error) || n == 0 || n >= flow::store::kKeepAllCheckpoints) {
    *error = fmt::format("--keep-checkpoints takes all, last or a count of checkpoints from 1, got `{}`", text);
    return false;
  }
  *keep = static_cast<uint32_t>(n);
  return true;
}

CLI::Validator KeepCheckpointsValue() {
  return CLI::Validator(
      [](std::string& text) {
        uint32_t keep;
        std::string error;
        return ParseKeepCheckpoints(text, &keep, &error) ? std::string() : error;
      },
      "all|last|N");
}

CLI::Validator EffectNumberValue() {
  return CLI::Validator(
      [](std::string& text) {
        uint64_t n;
        std::string error;
        if (text == "0" || ParseCount(text, &n, &error)) return std::string();
        return fmt::format("takes an effect number (0 for the state before the first; flow history numbers them), got `{}`",
                           text);
      },
      "N");
}

CLI::Validator SizeValue() {
  return CLI::Validator(
      [](std::string& text) {
        uint64_t bytes;
        std::string error;
        return ParseSize(text, &bytes, &error) ? std::string() : error;
      },
      "SIZE");
}

CLI::Validator RunIdValue() {
  return CLI::Validator(
      [](std::string& text) {
        if (store::IsValidRunId(text)) return std::string();
        return fmt::format("`{}` is not a valid run id (1 to 64 letters, digits, . _ -; not starting with - or .)", text);
      },
      "ID");
}

}  // namespace flow::cli
