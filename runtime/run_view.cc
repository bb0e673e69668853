#include "runtime/run_view.h"

#include <fmt/format.h>

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "runtime/error_record.h"
#include "runtime/program_file.h"
#include "store/keys.h"
#include "vm/value_ops.h"

namespace flow::runtime {

store::RunStatus EffectiveStatus(const store::Store& st, const store::RunRecord& r, int64_t* live_pid) {
  *live_pid = 0;
  if (r.status != store::RunStatus::kRunning) return r.status;
  return st.IsRunLive(r.id, live_pid) ? store::RunStatus::kRunning : store::RunStatus::kCrashed;
}

Status ListRunSummaries(const std::string& store_dir, RunList* out) {
  *out = RunList{};
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return st.status().IsNotFound() ? Status::Ok() : st.status();
  std::vector<store::RunRecord> records =
      st->ListRuns([&](const std::string& id, const Status& s) { out->unreadable.emplace_back(id, s.message()); });
  for (auto& r : records) {
    RunSummary summary;
    summary.status = EffectiveStatus(*st, r, &summary.live_pid);
    summary.record = std::move(r);
    out->runs.push_back(std::move(summary));
  }
  return Status::Ok();
}

namespace {

Status OpenExisting(const std::string& store_dir, const std::string& id, Result<store::Store>* st) {
  if (!store::IsValidRunId(id)) return Status::InvalidArgument(fmt::format("`{}` is not a run id", id));
  *st = store::Store::Open(store_dir, false);
  return st->status();
}

// The run's lock, or (live_pid set) the pid of the process that executes it.
Status LockToRead(store::Store& st, const std::string& id, std::unique_ptr<store::RunLock>* lock, int64_t* live_pid) {
  *live_pid = 0;
  Result<std::unique_ptr<store::RunLock>> taken = st.LockRun(id);
  if (taken.ok()) {
    *lock = std::move(*taken);
    return Status::Ok();
  }
  if (st.IsRunLive(id, live_pid)) return Status::Ok();
  return taken.status();
}

// "function (file:line)" -> its parts (file names may hold ':' and '(').
StackFrame ParseStackFrame(const std::string& text) {
  StackFrame f;
  f.text = text;
  size_t open = text.rfind(" (");
  size_t colon = text.rfind(':');
  if (open == std::string::npos || colon == std::string::npos || colon < open || text.back() != ')') return f;
  std::string digits = text.substr(colon + 1, text.size() - colon - 2);
  if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return f;
  f.function = text.substr(0, open);
  f.file = text.substr(open + 2, colon - open - 2);
  f.line = static_cast<uint32_t>(std::stoul(digits));
  return f;
}

void SplitLines(std::string_view text, std::vector<std::string>* lines) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines->emplace_back(line);
    start = end + 1;
  }
}

// Until the store keeps each run's source (issue 11, point 4): the file on disk, trusted
// for the run's lines only if it compiles to the run's bytecode. What a file compiled to
// is kept for the process (a page reload does not compile it again) while the file's
// size and modification time stay the same.
struct CompiledFile {
  int64_t size = -1;
  int64_t mtime_ns = 0;
  std::string code_hash;
};
std::mutex compiled_mu;
std::map<std::string, CompiledFile> compiled;

bool FileStamp(const std::string& path, CompiledFile* stamp) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return false;
  stamp->size = st.st_size;
  stamp->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return true;
}

// The code hash of what `path` compiles to ("" if it does not).
std::string CompiledHash(const std::string& path) {
  CompiledFile stamp;
  if (!FileStamp(path, &stamp)) return "";
  {
    std::lock_guard<std::mutex> hold(compiled_mu);
    auto it = compiled.find(path);
    if (it != compiled.end() && it->second.size == stamp.size && it->second.mtime_ns == stamp.mtime_ns)
      return it->second.code_hash;
  }
  Module module;
  std::string compile_errors;
  if (LoadProgram(path, &module, &compile_errors).ok()) stamp.code_hash = store::CodeHash(SerializeModule(module));
  std::lock_guard<std::mutex> hold(compiled_mu);
  if (compiled.size() > 256) compiled.clear();
  compiled[path] = stamp;
  return stamp.code_hash;
}

void ReadSourceFromDisk(const store::RunRecord& record, RunSource* out) {
  out->file = record.program;
  std::string text, error;
  if (!ReadFile(record.program, &text, &error, kMaxProgramBytes)) {
    out->note = error;
    return;
  }
  std::string hash = CompiledHash(record.program);
  if (hash.empty()) {
    out->note = "the file on disk no longer compiles";
  } else if (hash != record.code_hash) {
    out->note = "the file on disk has changed since the run started: its lines may not be the run's";
  } else {
    out->matches_run = true;
  }
  if (text.find('\0') != std::string::npos) {  // bytecode, not source
    out->note = "the run was started from bytecode";
    out->matches_run = false;
    return;
  }
  out->available = true;
  SplitLines(text, &out->lines);
}

}  // namespace

Status ReadRunDetail(const std::string& store_dir, const std::string& id, RunDetail* out) {
  *out = RunDetail{};
  Result<store::Store> st = Status::Ok();
  if (Status s = OpenExisting(store_dir, id, &st); !s.ok()) return s;
  Result<store::RunRecord> record = st->ReadRun(id);
  if (!record.ok()) return record.status();
  out->summary.status = EffectiveStatus(*st, *record, &out->summary.live_pid);
  out->summary.record = std::move(*record);
  out->cancel_requested = st->CancelRequested(id);
  const store::RunRecord& r = out->summary.record;
  ReadSourceFromDisk(r, &out->source);
  if (r.status != store::RunStatus::kFailed && r.status != store::RunStatus::kCancelled) return Status::Ok();
  std::unique_ptr<store::RunLock> lock;
  int64_t live_pid = 0;
  if (Status s = LockToRead(*st, id, &lock, &live_pid); !s.ok()) return s;
  out->live = live_pid != 0;
  if (!out->live) {
    store::RunDb::Options options;
    options.read_only = true;
    Result<std::unique_ptr<store::RunDb>> db = store::RunDb::Open(st->RunDbDir(id), options);
    if (!db.ok()) return db.status();
    std::string bytes;
    ErrorReport report;
    Status got = (*db)->Get(store::kErrorKey, &bytes);
    if (got.ok()) {
      if (Status s = DecodeErrorRecord(bytes, &report); !s.ok()) return s;
      out->error = std::move(report);
      out->error_has_stack = true;
    } else if (!got.IsNotFound()) {
      return got;
    }
  }
  if (!out->error) {  // a run that failed before the error record existed: its first line
    ErrorReport report;
    report.kind = r.error_kind;
    report.message = r.detail;
    out->error = std::move(report);
  }
  for (const auto& frame : out->error->trace) out->stack.push_back(ParseStackFrame(frame));
  return Status::Ok();
}

Status ReadRunHistory(const std::string& store_dir, const std::string& id, uint64_t offset, uint64_t limit,
                      HistoryPage* out) {
  *out = HistoryPage{};
  out->offset = offset;
  Result<store::Store> st = Status::Ok();
  if (Status s = OpenExisting(store_dir, id, &st); !s.ok()) return s;
  if (Result<store::RunRecord> record = st->ReadRun(id); !record.ok()) return record.status();
  std::unique_ptr<store::RunLock> lock;
  if (Status s = LockToRead(*st, id, &lock, &out->live_pid); !s.ok() || out->live_pid) return s;
  store::RunDb::Options options;
  options.read_only = true;
  Result<std::unique_ptr<store::RunDb>> db = store::RunDb::Open(st->RunDbDir(id), options);
  if (!db.ok()) return db.status();
  // Keys first (cheap), so that only the page's entries are decoded.
  struct Key {
    uint64_t order;  // effects done before it; a step event sorts before the effect after it
    bool step;
    std::string value;
  };
  std::vector<Key> effects, steps;
  auto scan = [&](const char* prefix, bool step, std::vector<Key>* into) {
    return (*db)->Scan(prefix, [&](std::string_view key, std::string_view value) {
      uint64_t n = 0;
      for (size_t i = 1; i < 9 && i < key.size(); ++i) n = (n << 8) | static_cast<uint8_t>(key[i]);
      into->push_back({n, step, std::string(value)});
      return true;
    });
  };
  if (Status s = scan(store::kHistoryPrefix, false, &effects); !s.ok()) return s;
  if (Status s = scan(store::kStepEventPrefix, true, &steps); !s.ok()) return s;
  out->total = effects.size() + steps.size();
  // The merge of `flow history`: a step event after k effects comes before effect k+1.
  uint64_t index = 0;
  size_t si = 0, ei = 0;
  while ((si < steps.size() || ei < effects.size()) && out->entries.size() < limit) {
    bool take_step = si < steps.size() && (ei == effects.size() || steps[si].order < effects[ei].order);
    const Key& k = take_step ? steps[si++] : effects[ei++];
    if (index++ < offset) continue;
    HistoryEntry e;
    if (Status s = DecodeHistoryEntry(k.value, &e); !s.ok()) return Status::Corruption(s.message());
    out->entries.push_back(std::move(e));
  }
  return Status::Ok();
}

namespace {

ShownValue Show(VM& vm, const std::string& name, Value v) {
  ShownValue shown;
  shown.name = name;
  std::string error;
  if (!EncodeJson(vm.heap(), v, true, &shown.json, &error)) shown.json = "<" + error + ">";
  if (shown.json.size() > kMaxShownValueBytes) {
    shown.json.resize(kMaxShownValueBytes);
    shown.truncated = true;
  }
  return shown;
}

StateView::Frame ShowFrame(VM& vm, const VM::FrameView& f) {
  StateView::Frame frame{f.function, f.pc, f.line, {}};
  for (const auto& [name, value] : f.locals) frame.locals.push_back(Show(vm, name, value));
  return frame;
}

}  // namespace

Status ReadRunState(const std::string& store_dir, const std::string& id, uint64_t at, StateView* out) {
  *out = StateView{};
  Result<store::Store> st = Status::Ok();
  if (Status s = OpenExisting(store_dir, id, &st); !s.ok()) return s;
  if (Result<store::RunRecord> record = st->ReadRun(id); !record.ok()) return record.status();
  std::unique_ptr<store::RunLock> lock;
  if (Status s = LockToRead(*st, id, &lock, &out->live_pid); !s.ok() || out->live_pid) return s;
  LoadedRun run;
  if (Status s = OpenRunToRead(*st, id, &run); !s.ok()) return s;
  VM& vm = *run.vm;
  out->checkpoint = run.checkpoint;
  out->effects_done = vm.effects_done();
  out->checkpoint_ms = run.checkpoint_ms;
  if (at != 0 && at != out->effects_done) {
    out->at_unavailable = true;
    out->note = fmt::format(
        "this store keeps only the last checkpoint of a run (after effect {}); the state after effect {} is not "
        "kept, so the last one is shown",
        out->effects_done, at);
  }
  for (const auto& f : vm.InspectFrames()) out->frames.push_back(ShowFrame(vm, f));
  for (const auto& [name, value] : vm.InspectGlobals()) out->globals.push_back(Show(vm, name, value));
  std::vector<VM::TaskView> tasks = vm.InspectTasks();
  for (const auto& t : tasks) {
    if (t.path.empty()) {  // the top level: its frames are above
      out->top_level_state = t.state + (t.waits_for.empty() ? "" : " on " + t.waits_for);
      continue;
    }
    StateView::Task task{t.path, t.state, t.waits_for, t.wake_ms, {}};
    for (const auto& f : t.frames) task.frames.push_back(ShowFrame(vm, f));
    out->tasks.push_back(std::move(task));
  }
  return Status::Ok();
}

}  // namespace flow::runtime
