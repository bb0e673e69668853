// flow logs RUN [--follow] [--json]: the log lines of a run (log.info/warn/error), read
// from its history, where each is recorded once as an effect.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "stdlib/log.h"
#include "store/store.h"

namespace flow::cli {

namespace {

using Json = nlohmann::ordered_json;  // fields keep the order the program gave them

struct LogLine {
  uint64_t seq = 0;
  int64_t ms = 0;
  std::string level;  // INFO, WARN, ERROR
  std::string task;   // "" for the top level
  std::string msg;
  Json fields = Json::object();
};

// A history entry of a log call as its line; false for other effects (and a log call that
// raised, which logged nothing).
bool ToLogLine(const runtime::HistoryEntry& e, LogLine* out) {
  out->level = stdlib::LogLevelOf(e.effect);
  if (out->level.empty() || e.state != runtime::HistoryEntry::State::kDone) return false;
  out->seq = e.seq;
  out->ms = e.started_ms;
  out->task = e.task;
  Json args = Json::parse(e.args_preview, nullptr, false);
  if (!args.is_array() || args.empty() || !args[0].is_string()) {  // cut at the history's cap
    out->msg = e.args_preview;
    return true;
  }
  out->msg = args[0].get<std::string>();
  if (args.size() > 1 && args[1].is_object()) out->fields = args[1];
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void PrintLine(const LogLine& l, bool json) {
  if (json) {
    Json out = {{"time", stdlib::FormatLogTime(l.ms)}, {"time_ms", l.ms}, {"level", Lower(l.level)},
                {"msg", l.msg}, {"fields", l.fields}, {"seq", l.seq}, {"task", l.task}};
    fmt::print("{}\n", out.dump(-1, ' ', false, Json::error_handler_t::replace));
    return;
  }
  std::vector<stdlib::LogField> fields;
  for (const auto& [key, value] : l.fields.items()) {
    bool is_string = value.is_string();
    fields.push_back({key, is_string ? value.get<std::string>() : value.dump(-1, ' ', false, Json::error_handler_t::replace),
                      is_string});
  }
  fmt::print("{}", stdlib::FormatLogLine(l.ms, l.level, l.task, l.msg, fields));
}

// Is a process executing the run (it holds the run's lock), and does its record say so?
void RunState(const std::string& store_dir, const std::string& run_id, bool* live, bool* running) {
  *live = *running = false;
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return;
  int64_t pid = 0;
  *live = st->IsRunLive(run_id, &pid);
  Result<store::RunRecord> record = st->ReadRun(run_id);
  *running = *live && record.ok() && record->status == store::RunStatus::kRunning;
}

}  // namespace

int LogsCommand(const std::string& store_dir, const std::string& run_id, bool json, bool follow) {
  constexpr auto kPoll = std::chrono::milliseconds(200);
  uint64_t printed = 0;  // the seq of the last line printed: log calls complete in seq order
  for (;;) {
    bool live = false, running = false;
    if (follow) RunState(store_dir, run_id, &live, &running);  // before the read: its last read sees the end
    std::vector<runtime::HistoryEntry> entries;
    if (Status s = ReadHistory(store_dir, run_id, &entries); !s.ok()) {
      // A live run whose process does not let readers in (yet): wait for what it logs.
      if (follow && live) {
        std::this_thread::sleep_for(kPoll);
        continue;
      }
      return Fail(s, "");
    }
    for (const auto& e : entries) {
      LogLine line;
      if (e.seq <= printed || !ToLogLine(e, &line)) continue;
      PrintLine(line, json);
      printed = e.seq;
    }
    std::fflush(stdout);
    if (!follow || !running) return kExitOk;
    std::this_thread::sleep_for(kPoll);
  }
}

}  // namespace flow::cli
