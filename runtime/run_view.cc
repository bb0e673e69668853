#include "runtime/run_view.h"

#include <leveldb/env.h>

#include "runtime/live.h"

#include <fmt/format.h>

#include <algorithm>

#include "runtime/error_record.h"
#include "store/keys.h"
#include "vm/value_ops.h"

namespace flow::runtime {

store::RunStatus EffectiveStatus(const store::Store& st, const store::RunRecord& r, int64_t* live_pid) {
  *live_pid = 0;
  if (r.status != store::RunStatus::kRunning && r.status != store::RunStatus::kSuspended) return r.status;
  if (r.status == store::RunStatus::kRunning && st.IsRunLive(r.id, live_pid)) return store::RunStatus::kRunning;
  if (st.IsPoisoned(r.id)) return store::RunStatus::kPoisoned;
  return r.status == store::RunStatus::kRunning ? store::RunStatus::kCrashed : r.status;
}

store::RunStatus EffectiveStatus(const store::Store& st, const store::ListedRun& run, int64_t* live_pid) {
  *live_pid = 0;
  return run.indexed ? run.record.status : EffectiveStatus(st, run.record, live_pid);
}

Status ListRunSummaries(const std::string& store_dir, RunList* out) {
  *out = RunList{};
  Result<store::Store> st = store::Store::Open(store_dir, false);
  if (!st.ok()) return st.status().IsNotFound() ? Status::Ok() : st.status();
  std::vector<store::ListedRun> entries =
      st->ListRunEntries([&](const std::string& id, const Status& s) { out->unreadable.emplace_back(id, s.message()); });
  for (auto& entry : entries) {
    RunSummary summary;
    summary.status = EffectiveStatus(*st, entry, &summary.live_pid);
    summary.record = std::move(entry.record);
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
  if (st.ReadableWhileLive()) {
    if (!st.RunExists(id)) return st.ReadRun(id).status();
    (void)st.IsRunLive(id, live_pid);
    return Status::Ok();
  }
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

// The source stored with the run's code (by its code hash), and what the file on disk is now.
void ReadStoredSource(const store::Store& st, const store::RunRecord& record, RunSource* out) {
  out->file = record.program;
  std::optional<std::string> text;
  if (std::string stored; st.GetSource(record.code_hash, &stored).ok()) text = std::move(stored);
  out->file_on_disk = CheckProgramFile(record, text);
  if (!text) {
    out->note = "no source is stored with this run's code: it was started from a .flowc file, or before flow kept sources";
    return;
  }
  out->available = true;
  SplitLines(*text, &out->lines);
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
  ReadStoredSource(*st, r, &out->source);
  if (OriginRecord origin; ReadOriginRecord(*st, id, &origin).ok()) out->origin = std::move(origin);
  if (r.status != store::RunStatus::kFailed && r.status != store::RunStatus::kCancelled) return Status::Ok();
  std::unique_ptr<store::RunLock> lock;
  int64_t live_pid = 0;
  if (Status s = LockToRead(*st, id, &lock, &live_pid); !s.ok()) return s;
  out->live = live_pid != 0;
  if (!out->live || st->ReadableWhileLive()) {
    Result<std::unique_ptr<store::RunDb>> db = st->OpenRunDbToRead(id);
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
  if (Status s = LockToRead(*st, id, &lock, &out->live_pid); !s.ok()) return s;
  std::unique_ptr<leveldb::Env> snapshot_env;  // a live run: a snapshot its process sends (runtime/live.h)
  Result<std::unique_ptr<store::RunDb>> db = Status::Ok();
  if (out->live_pid && !st->ReadableWhileLive()) {
    std::unique_ptr<store::RunDb> snapshot;
    Status taken = TakeLiveSnapshot(st->RunDir(id), out->live_pid,
                                    std::string(store::kHistoryPrefix) + store::kStepEventPrefix, &snapshot_env, &snapshot);
    if (taken.IsNotFound()) return Status::Ok();  // held, not answering: live_pid says so
    if (!taken.ok()) return taken;
    db = std::move(snapshot);
    out->live_pid = 0;
    out->live = true;
  } else {
    out->live = out->live_pid != 0;
    out->live_pid = 0;  // read, not only known to be held
    db = st->OpenRunDbToRead(id);
    if (!db.ok()) return db.status();
  }
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

Status ReadRunState(const std::string& store_dir, const std::string& id, std::optional<uint64_t> at,
                    StateView* out) {
  *out = StateView{};
  Result<store::Store> st = Status::Ok();
  if (Status s = OpenExisting(store_dir, id, &st); !s.ok()) return s;
  if (Result<store::RunRecord> record = st->ReadRun(id); !record.ok()) return record.status();
  LoadedRun run;  // holding its lock, or from a live run's snapshot
  if (Status s = OpenRunForReading(*st, id, &run, at); !s.ok()) {
    if (!st->IsRunLive(id, &out->live_pid)) return s;  // held, not answering: live_pid says so
    return Status::Ok();
  }
  out->live = run.live;
  VM& vm = *run.vm;
  out->checkpoint = run.checkpoint;
  out->effects_done = vm.effects_done();
  out->checkpoint_ms = run.checkpoint_ms;
  if (at && *at != out->effects_done) {  // its checkpoint is no longer kept: the next kept one
    out->at_not_kept = true;
    out->note = fmt::format(
        "the run no longer keeps the checkpoint after effect {} (--keep-checkpoints); the next one it keeps, after "
        "effect {}, is shown",
        *at, out->effects_done);
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
