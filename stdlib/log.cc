// log.info / log.warn / log.error(msg [, fields]): output effects (kOutput in builtins.def),
// so each is recorded once in the run's history, its arguments being the message and the
// fields (secrets masked), and is not logged again by a resumed run.
#include "stdlib/log.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

#include "stdlib/natives.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

std::string FormatLogTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
}

std::string LogLevelOf(std::string_view effect) {
  if (effect == "log.info") return "INFO";
  if (effect == "log.warn") return "WARN";
  if (effect == "log.error") return "ERROR";
  return "";
}

namespace {

// Control characters as \n, \t or \xNN: a log line stays one line.
void AppendEscaped(std::string_view text, std::string* out) {
  for (unsigned char c : text) {
    if (c == '\n') *out += "\\n";
    else if (c == '\t') *out += "\\t";
    else if (c < 0x20 || c == 0x7f) *out += fmt::format("\\x{:02x}", c);
    else out->push_back(static_cast<char>(c));
  }
}

// A string value that would read ambiguously bare (empty, spaces, quotes, `=`) is quoted.
bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (unsigned char c : s)
    if (c <= ' ' || c == '"' || c == '=' || c == 0x7f) return true;
  return false;
}

}  // namespace

std::string FormatLogLine(int64_t ms, std::string_view level, std::string_view task, std::string_view msg,
                          const std::vector<LogField>& fields) {
  std::string line = FormatLogTime(ms);
  line += ' ';
  line += level;
  if (!task.empty()) {
    line += " [task ";
    AppendEscaped(task, &line);
    line += ']';
  }
  line += ' ';
  AppendEscaped(msg, &line);
  for (const LogField& f : fields) {
    line += ' ';
    AppendEscaped(f.key, &line);
    line += '=';
    if (f.is_string && NeedsQuotes(f.text)) {
      line += '"';
      for (char c : f.text) {
        if (c == '"' || c == '\\') line += '\\';
        AppendEscaped(std::string_view(&c, 1), &line);
      }
      line += '"';
      continue;
    }
    AppendEscaped(f.text, &line);
  }
  line += '\n';
  return line;
}

namespace {

int64_t WallMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

NativeResult Log(VM& vm, Value* args, int argc, const char* name, const char* level) {
  Heap& heap = vm.heap();
  if (args[0].tag != Tag::kString && args[0].tag != Tag::kSecret)
    return Raise(vm, "type", fmt::format("{}(msg, fields) takes a message string, not {}", name, TypeName(args[0].tag)));
  std::string msg, error;
  if (!ToDisplayString(heap, args[0], &msg, &error)) return Raise(vm, "type", error);  // a secret shows as ***
  std::vector<LogField> fields;
  if (argc == 2 && args[1].tag != Tag::kNull) {
    if (args[1].tag != Tag::kMap)
      return Raise(vm, "type", fmt::format("{}(msg, fields): fields must be a map, not {}", name, TypeName(args[1].tag)));
    for (const auto& [key, v] : heap.Get<MapObj>(args[1].ref)->entries) {
      // A secret is a string shown masked, as its history entry (and so flow logs) has it.
      LogField f{key, "", v.tag == Tag::kString || v.tag == Tag::kSecret};
      if (f.is_string) {
        if (!ToDisplayString(heap, v, &f.text, &error)) return Raise(vm, "type", error);
      } else if (!EncodeJson(heap, v, false, &f.text, &error)) {  // secrets masked
        return Raise(vm, "type", fmt::format("{}: field `{}` is not a JSON value: {}", name, key, error));
      }
      fields.push_back(std::move(f));
    }
  }
  vm.host().WriteLog(FormatLogLine(WallMs(), level, vm.task_path(), msg, fields));
  return kDone;
}

}  // namespace

NativeResult LogInfo(VM& vm, Value* args, int argc, Value* out) {
  *out = Value::Null();
  return Log(vm, args, argc, "log.info", "INFO");
}
NativeResult LogWarn(VM& vm, Value* args, int argc, Value* out) {
  *out = Value::Null();
  return Log(vm, args, argc, "log.warn", "WARN");
}
NativeResult LogError(VM& vm, Value* args, int argc, Value* out) {
  *out = Value::Null();
  return Log(vm, args, argc, "log.error", "ERROR");
}

}  // namespace flow::stdlib
