// Values of command-line options that CLI11 cannot check by type alone: durations and sizes (a unit
// is required), budgets (a positive count that fits in 63 bits) and run ids. Each is
// refused at parse time, with a usage error (exit 2) that says what was expected.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

namespace flow::cli {

// The help of every command's --store option.
inline constexpr const char* kStoreHelp =
    "the store: a folder (default ./.flow, or FLOW_STORE), or a PostgreSQL database (postgresql://USER@HOST:PORT/DB)";

// A duration as Flow writes them: digits and a unit (ms, s, m, h, d); false with *error
// (a hint for a bare number: "did you mean 5s?") if it is not one or is too long.
bool ParseDuration(const std::string& text, int64_t* ms, std::string* error);

// A size with its unit (K, M, G, T: powers of 1024, also written KiB or KB), at least 1;
// false with *error otherwise (a bare number included: is 512 bytes or megabytes?).
bool ParseSize(const std::string& text, uint64_t* bytes, std::string* error);

// A budget count: 1 to 2^63-1, digits only; false with *error otherwise.
bool ParseCount(const std::string& text, uint64_t* n, std::string* error);

// CLI11 checks for the above, and for run ids (letters, digits, . _ -, not starting with -).
CLI::Validator DurationValue();
CLI::Validator PositiveDurationValue();  // as DurationValue, and more than 0
CLI::Validator CountValue();
CLI::Validator SizeValue();
CLI::Validator EffectNumberValue();  // --at: 0 or a count
// --keep-checkpoints: all, last or N (store::RunRecord::keep_checkpoints).
bool ParseKeepCheckpoints(std::string_view text, uint32_t* keep, std::string* error);
CLI::Validator KeepCheckpointsValue();
CLI::Validator RunIdValue();

}  // namespace flow::cli
