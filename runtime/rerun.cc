// flow rerun (runtime/rerun.h): the old run's completed steps are copied, as data, into
// the new run's VM before its first checkpoint, where a step entered with a key it holds
// returns the stored value (the mechanism by which a step is entered once per run).
#include "runtime/rerun.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <unordered_map>

#include "runtime/journal.h"
#include "runtime/program_file.h"
#include "vm/base/coding.h"
#include "vm/base/record.h"
#include "vm/heap.h"

namespace flow::runtime {

namespace {

constexpr uint8_t kOriginRecordVersion = 1;

// Copies `v` from heap `from` into heap `to` (shared parts and cycles kept as they are).
// Only data moves to a new run, whose code may differ: false (with *why) for a value
// holding a function (its code is the old run's), a task (it belongs to the old run) or a
// secret (its parts are re-read from the environment where it is made).
class DataCopier {
 public:
  DataCopier(const Heap& from, Heap& to) : from_(from), to_(to) {}

  bool Copy(Value v, Value* out, std::string* why) {
    switch (v.tag) {
      case Tag::kNull:
      case Tag::kBool:
      case Tag::kInt:
      case Tag::kFloat:
      case Tag::kBuiltin:  // builtins are the binary's, whatever the code
        *out = v;
        return true;
      case Tag::kFunction: *why = "its value holds a function"; return false;
      case Tag::kTask: *why = "its value holds a task"; return false;
      case Tag::kSecret: *why = "its value holds a secret"; return false;
      default: break;
    }
    if (auto it = copied_.find(v.ref); it != copied_.end()) {
      *out = it->second;
      return true;
    }
    switch (v.tag) {
      case Tag::kString:
        *out = copied_[v.ref] = to_.NewString(from_.StringOf(v));
        return true;
      case Tag::kList: {
        *out = copied_[v.ref] = to_.NewList();
        for (Value item : from_.Get<ListObj>(v.ref)->items) {
          Value copy;
          if (!Copy(item, &copy, why)) return false;
          to_.PushItem(out->ref, copy);
        }
        return true;
      }
      case Tag::kMap: {
        *out = copied_[v.ref] = to_.NewMap();
        for (const auto& [key, item] : from_.Get<MapObj>(v.ref)->entries) {
          Value copy;
          if (!Copy(item, &copy, why)) return false;
          to_.Mutable<MapObj>(out->ref)->Set(key, copy);
        }
        return true;
      }
      case Tag::kError: {
        const ErrorObj* e = from_.Get<ErrorObj>(v.ref);
        *out = copied_[v.ref] = to_.NewError(e->kind, e->message);
        Value data;
        if (!Copy(e->data, &data, why)) return false;
        ErrorObj* copy = to_.Mutable<ErrorObj>(out->ref);
        copy->data = data;
        copy->trace = e->trace;
        return true;
      }
      default:
        *why = "its value cannot be read";
        return false;
    }
  }

 private:
  const Heap& from_;
  Heap& to_;
  std::unordered_map<uint32_t, Value> copied_;
};

// Copies the old run's steps into `vm`: the completed ones whose values are data, and the
// `once` steps in doubt (still in doubt: new code does not make them safe to run again).
void SeedFromOldRun(VM& old, VM& vm, RerunOrigin* origin) {
  const Heap& from = old.heap();
  Heap& to = vm.heap();
  DataCopier copier(from, to);
  Value completed = Value::Null(), doubtful = Value::Null();
  auto copy_map = [&](Value map, Value* into, auto&& on_copied, auto&& on_refused) {
    if (map.tag != Tag::kMap) return;
    for (const auto& [key, value] : from.Get<MapObj>(map.ref)->entries) {
      Value copy;
      std::string why;
      if (!copier.Copy(value, &copy, &why)) {
        on_refused(key, why);
        continue;
      }
      if (into->tag != Tag::kMap) *into = to.NewMap();
      to.Mutable<MapObj>(into->ref)->Set(key, copy);
      on_copied(key);
    }
  };
  copy_map(
      old.completed_steps(), &completed, [&](const std::string& key) { origin->reused.push_back(key); },
      [&](const std::string& key, const std::string& why) { origin->not_reused.emplace_back(key, why); });
  copy_map(
      old.doubtful_steps(), &doubtful, [&](const std::string& key) { origin->in_doubt.push_back(key); },
      [](const std::string&, const std::string&) {});
  vm.SeedSteps(completed, doubtful);
}

std::string JsonList(const std::vector<std::string>& items) { return nlohmann::json(items).dump(); }

}  // namespace

Status WriteOriginRecord(store::Store& st, const std::string& id, const OriginRecord& r) {
  std::string p;
  PutBytes(&p, r.kind);
  PutBytes(&p, r.origin_run);
  PutBytes(&p, r.step_key_run);
  PutVarint(&p, r.reused.size());
  for (const auto& key : r.reused) PutBytes(&p, key);
  return store::WriteFileAtomically(store::RunFilePath(st.dir(), id, store::kOriginFile),
                                    SealRecord(kOriginRecordVersion, p));
}

Status ReadOriginRecord(const store::Store& st, const std::string& id, OriginRecord* r) {
  std::string bytes, error;
  const std::string path = store::RunFilePath(st.dir(), id, store::kOriginFile);
  if (access(path.c_str(), F_OK) != 0) return Status::NotFound("not a rerun");
  if (!ReadFile(path, &bytes, &error)) return Status::IOError(error);
  std::string_view payload;
  const std::string what = fmt::format("the origin record of run {}", id);
  if (Status s = OpenRecord(bytes, kOriginRecordVersion, what, &payload); !s.ok()) return s;
  Reader rd(payload);
  r->kind = std::string(rd.Bytes());
  r->origin_run = std::string(rd.Bytes());
  r->step_key_run = std::string(rd.Bytes());
  uint64_t n = rd.Varint();
  r->reused.clear();
  for (uint64_t i = 0; i < n && !rd.failed(); ++i) r->reused.emplace_back(rd.Bytes());
  if (rd.failed() || !rd.at_end() || !store::IsValidRunId(r->origin_run) || !store::IsValidRunId(r->step_key_run))
    return Status::Corruption(what + " is malformed");
  return Status::Ok();
}

Status StartRerun(store::Store& st, const std::string& id, const std::string& code_hash, RerunOrigin& origin, VM& vm,
                  StoreJournal& journal) {
  origin.seed(vm);
  OriginRecord record{"rerun", origin.run_id, origin.step_key_run, origin.reused};
  if (Status s = WriteOriginRecord(st, id, record); !s.ok()) return s;
  HistoryEntry e;
  e.effect = "rerun";
  e.idempotency_key = origin.run_id;
  e.args_preview = JsonList({origin.run_id, code_hash});
  std::string refused;
  for (const auto& [key, why] : origin.not_reused) refused += fmt::format("{}{} ({})", refused.empty() ? "" : ", ", key, why);
  e.result_preview = fmt::format("rerun of run {} on code {}: {} completed step(s) to reuse {}{}", origin.run_id,
                                 code_hash, origin.reused.size(), JsonList(origin.reused),
                                 refused.empty() ? "" : "; run again: " + refused);
  e.started_ms = vm.host().NowMs();
  journal.AddEvent(vm, std::move(e));
  journal.SetRerun(origin.step_key_run, origin.run_id, {origin.reused.begin(), origin.reused.end()});
  return Status::Ok();
}

Status ContinueRerun(store::Store& st, const std::string& id, store::RunDb& db, StoreJournal& journal) {
  OriginRecord origin;
  Status s = ReadOriginRecord(st, id, &origin);
  if (s.IsNotFound()) return Status::Ok();
  if (!s.ok()) return s;
  std::set<std::string> inherited(origin.reused.begin(), origin.reused.end());
  Status bad;
  s = db.Scan(store::kStepEventPrefix, [&](std::string_view, std::string_view value) {
    HistoryEntry e;
    bad = DecodeHistoryEntry(value, &e);
    if (bad.ok() && e.effect == "step reused") inherited.erase(e.idempotency_key);
    return bad.ok();
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  journal.SetRerun(origin.step_key_run, origin.origin_run, std::move(inherited));
  return Status::Ok();
}

Status RerunRun(const RerunOptions& options, RunListener* listener, RerunOrigin* origin, RunResult* result) {
  *result = RunResult{};
  result->run_id = options.run_id;
  Result<store::Store> st = store::Store::Open(options.store_dir, false);
  if (!st.ok()) return st.status();
  Result<store::RunRecord> record = st->ReadRun(options.run_id);
  if (!record.ok()) return record.status();
  // Held while its steps are copied: the old run is neither live nor changed meanwhile.
  Result<std::unique_ptr<store::RunLock>> lock = st->LockRun(options.run_id);
  if (!lock.ok()) return lock.status();
  LoadedRun old;
  if (Status s = OpenRunToRead(*st, options.run_id, &old); !s.ok()) return s;
  OriginRecord before;
  Status s = ReadOriginRecord(*st, options.run_id, &before);
  if (!s.ok() && !s.IsNotFound()) return s;
  origin->run_id = options.run_id;
  origin->step_key_run = s.ok() ? before.step_key_run : options.run_id;
  origin->seed = [&](VM& vm) {
    SeedFromOldRun(*old.vm, vm, origin);
    old.vm.reset();
    old.db.reset();
    lock->reset();
  };
  StartOptions start;
  start.file = options.code ? options.code_file : old.record.program;
  start.args = old.record.args;
  start.store_dir = options.store_dir;
  start.run_id = options.new_run_id;
  start.sync = old.record.durability != "async";
  start.virtual_time = old.record.virtual_time;
  start.budgets.max_effects = old.record.max_effects;
  start.budgets.max_instructions = old.record.max_instructions;
  start.budgets.max_tokens = old.record.max_tokens;
  start.source = options.code ? options.code_source : old.source;
  start.origin = origin;
  return StartRun(start, options.code ? *options.code : *old.module, listener, result);
}

}  // namespace flow::runtime
