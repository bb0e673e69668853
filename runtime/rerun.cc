// flow rerun (runtime/rerun.h): the old run's completed steps are copied, as data, into
// the new run's VM before its first checkpoint, where a step entered with a key it holds
// returns the stored value (the mechanism by which a step is entered once per run).
#include "runtime/rerun.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstring>
#include <functional>
#include <unordered_set>

#include "runtime/journal.h"
#include "runtime/program_file.h"
#include "vm/base/coding.h"
#include "vm/base/record.h"
#include "vm/bytecode/opcodes.h"
#include "vm/heap.h"

namespace flow::runtime {

namespace {

constexpr uint8_t kOriginRecordVersion = 1;
constexpr uint8_t kEndStepsVersion = 1;
// Deeper values are not carried (nor read back): the copy recurses.
constexpr int kMaxDataDepth = 2000;

// A step's value as data (docs/checkpoint.md, "The steps of an ended run"), independent of
// the heap it lives in and of the code that made it. Only data moves to a new run, whose
// code may differ: a value holding a function (its code is the old run's), a task (it
// belongs to the old run) or a secret (its parts are re-read from the environment where it
// is made) is refused, with why; so is a cyclic one.
class DataEncoder {
 public:
  explicit DataEncoder(const Heap& heap) : heap_(heap) {}

  bool Encode(Value v, std::string* out, std::string* why, int depth = 0) {
    if (depth > kMaxDataDepth) return Refuse(why, "its value is nested too deeply");
    PutFixed8(out, static_cast<uint8_t>(v.tag));
    switch (v.tag) {
      case Tag::kNull: return true;
      case Tag::kBool: PutFixed8(out, v.b ? 1 : 0); return true;
      case Tag::kInt: PutFixed64(out, static_cast<uint64_t>(v.i)); return true;
      case Tag::kFloat: {
        uint64_t bits;
        std::memcpy(&bits, &v.f, sizeof bits);
        PutFixed64(out, bits);
        return true;
      }
      case Tag::kBuiltin: PutVarint(out, v.ref); return true;  // builtins are the binary's, whatever the code
      case Tag::kString: PutBytes(out, heap_.StringOf(v)); return true;
      case Tag::kFunction: return Refuse(why, "its value holds a function");
      case Tag::kTask: return Refuse(why, "its value holds a task");
      case Tag::kSecret: return Refuse(why, "its value holds a secret");
      default: break;
    }
    if (!open_.insert(v.ref).second) return Refuse(why, "its value contains itself");
    bool ok = true;
    if (v.tag == Tag::kList) {
      const auto& items = heap_.Get<ListObj>(v.ref)->items;
      PutVarint(out, items.size());
      for (size_t k = 0; ok && k < items.size(); ++k) ok = Encode(items[k], out, why, depth + 1);
    } else if (v.tag == Tag::kMap) {
      const auto& entries = heap_.Get<MapObj>(v.ref)->entries;
      PutVarint(out, entries.size());
      for (size_t k = 0; ok && k < entries.size(); ++k) {
        PutBytes(out, entries[k].first);
        ok = Encode(entries[k].second, out, why, depth + 1);
      }
    } else if (v.tag == Tag::kError) {
      const ErrorObj* e = heap_.Get<ErrorObj>(v.ref);
      PutBytes(out, e->kind);
      PutBytes(out, e->message);
      ok = Encode(e->data, out, why, depth + 1);
      PutVarint(out, e->trace.size());
      for (const auto& t : e->trace) PutBytes(out, t);
    } else {
      ok = Refuse(why, "its value cannot be read");
    }
    open_.erase(v.ref);
    return ok;
  }

 private:
  static bool Refuse(std::string* why, const char* text) {
    if (why->empty()) *why = text;
    return false;
  }
  const Heap& heap_;
  std::unordered_set<uint32_t> open_;  // the lists, maps and errors being encoded (a cycle)
};

// Builds, in `heap`, a value DataEncoder wrote; false if the bytes are malformed.
bool DecodeData(Reader& r, Heap& heap, Value* out, int depth = 0) {
  if (depth > kMaxDataDepth) return false;
  const auto tag = static_cast<Tag>(r.U8());
  switch (tag) {
    case Tag::kNull: *out = Value::Null(); break;
    case Tag::kBool: *out = Value::Bool(r.U8() != 0); break;
    case Tag::kInt: *out = Value::Int(static_cast<int64_t>(r.U64())); break;
    case Tag::kFloat: {
      uint64_t bits = r.U64();
      double f;
      std::memcpy(&f, &bits, sizeof f);
      *out = Value::Float(f);
      break;
    }
    case Tag::kBuiltin: {
      uint64_t id = r.Varint();
      if (id >= static_cast<uint64_t>(kBuiltinCount)) return false;
      *out = Value::Builtin(static_cast<uint32_t>(id));
      break;
    }
    case Tag::kString: *out = heap.NewString(std::string(r.Bytes())); break;
    case Tag::kList: {
      uint64_t n = r.Varint();
      if (n > r.remaining()) return false;
      *out = heap.NewList();
      for (uint64_t k = 0; k < n && !r.failed(); ++k) {
        Value item;
        if (!DecodeData(r, heap, &item, depth + 1)) return false;
        heap.PushItem(out->ref, item);
      }
      break;
    }
    case Tag::kMap: {
      uint64_t n = r.Varint();
      if (n > r.remaining()) return false;
      *out = heap.NewMap();
      for (uint64_t k = 0; k < n && !r.failed(); ++k) {
        std::string key(r.Bytes());
        Value item;
        if (!DecodeData(r, heap, &item, depth + 1)) return false;
        heap.Mutable<MapObj>(out->ref)->Set(key, item);
      }
      break;
    }
    case Tag::kError: {
      std::string kind(r.Bytes()), message(r.Bytes());
      Value data;
      if (!DecodeData(r, heap, &data, depth + 1)) return false;
      *out = heap.NewError(std::move(kind), std::move(message), data);
      uint64_t n = r.Varint();
      if (n > r.remaining()) return false;
      ErrorObj* e = heap.Mutable<ErrorObj>(out->ref);
      for (uint64_t k = 0; k < n && !r.failed(); ++k) e->trace.emplace_back(r.Bytes());
      break;
    }
    default: return false;
  }
  return !r.failed();
}

// Each step of a steps map (key -> value), encoded: n:varint (key:bytes movable:u8
// (data | why:bytes)){n}.
std::string EncodeSteps(const Heap& heap, Value steps) {
  std::string out;
  if (steps.tag != Tag::kMap) {
    PutVarint(&out, 0);
    return out;
  }
  const auto& entries = heap.Get<MapObj>(steps.ref)->entries;
  PutVarint(&out, entries.size());
  DataEncoder encoder(heap);
  for (const auto& [key, value] : entries) {
    PutBytes(&out, key);
    std::string data, why;
    bool movable = encoder.Encode(value, &data, &why);
    PutFixed8(&out, movable ? 1 : 0);
    PutBytes(&out, movable ? data : why);
  }
  return out;
}

// Decodes EncodeSteps' bytes into `heap`: a map of the movable steps (null if none), and
// `on_value(key)` / `on_refused(key, why)` for each.
Status DecodeSteps(std::string_view bytes, Heap& heap, Value* map, const std::function<void(const std::string&)>& on_value,
                   const std::function<void(const std::string&, const std::string&)>& on_refused) {
  Reader r(bytes);
  uint64_t n = r.Varint();
  *map = Value::Null();
  for (uint64_t k = 0; k < n && !r.failed(); ++k) {
    std::string key(r.Bytes());
    bool movable = r.U8() != 0;
    std::string_view body = r.Bytes();
    if (r.failed()) break;
    if (!movable) {
      on_refused(key, std::string(body));
      continue;
    }
    Reader data(body);
    Value v;
    if (!DecodeData(data, heap, &v) || !data.at_end()) return Status::Corruption("a step's value is malformed");
    if (map->tag != Tag::kMap) *map = heap.NewMap();
    heap.Mutable<MapObj>(map->ref)->Set(key, v);
    on_value(key);
  }
  if (r.failed() || !r.at_end()) return Status::Corruption("the steps record is malformed");
  return Status::Ok();
}

std::string JsonList(const std::vector<std::string>& items) { return nlohmann::json(items).dump(); }

bool HasEnded(const store::RunRecord& r) {
  return r.status == store::RunStatus::kCompleted || r.status == store::RunStatus::kFailed ||
         r.status == store::RunStatus::kCancelled;
}

}  // namespace

Status WriteOriginRecord(store::Store& st, const std::string& id, const OriginRecord& r) {
  std::string p;
  PutBytes(&p, r.kind);
  PutBytes(&p, r.origin_run);
  PutBytes(&p, r.step_key_run);
  PutVarint(&p, r.reused.size());
  for (const auto& key : r.reused) PutBytes(&p, key);
  PutVarint(&p, r.origin_effect);
  return st.WriteOrigin(id, SealRecord(kOriginRecordVersion, p));
}

Status ReadOriginRecord(const store::Store& st, const std::string& id, OriginRecord* r) {
  std::string bytes;
  Status s = st.ReadOrigin(id, &bytes);
  if (s.IsNotFound()) return Status::NotFound("not a rerun");
  if (!s.ok()) return s;
  return DecodeOriginRecord(bytes, id, r);
}

Status DecodeOriginRecord(std::string_view bytes, const std::string& id, OriginRecord* r) {
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
  r->origin_effect = rd.Varint();
  if (rd.failed() || !rd.at_end() || !store::IsValidRunId(r->origin_run) || !store::IsValidRunId(r->step_key_run))
    return Status::Corruption(what + " is malformed");
  return Status::Ok();
}

Status StartRerun(store::Store& st, const std::string& id, const std::string& code_hash, RerunOrigin& origin, VM& vm,
                  StoreJournal& journal) {
  if (Status s = origin.seed(vm); !s.ok()) return s;
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

void RecordEndSteps(VM& vm, StoreJournal& journal) {
  // No step: nothing to keep, no write.
  if (vm.completed_steps().tag != Tag::kMap && vm.doubtful_steps().tag != Tag::kMap) return;
  std::string payload;
  PutBytes(&payload, EncodeSteps(vm.heap(), vm.completed_steps()));
  PutBytes(&payload, EncodeSteps(vm.heap(), vm.doubtful_steps()));
  journal.AddPending(store::kEndStepsKey, SealRecord(kEndStepsVersion, payload));
}

Status ContinueRerun(store::Store& st, const std::string& id, store::RunDb& db, StoreJournal& journal) {
  OriginRecord origin;
  Status s = ReadOriginRecord(st, id, &origin);
  if (s.IsNotFound()) return Status::Ok();
  if (!s.ok()) return s;
  if (origin.kind != "rerun") return Status::Ok();  // a fork keeps no keys of another run
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
  // A run that has not ended may still go on (resume, the worker): two runs would then do
  // its work. It is resumed, or cancelled first (as Temporal's reset ends the run it resets).
  int64_t pid = 0;
  if (st->IsRunLive(options.run_id, &pid))
    return Status::InvalidArgument(fmt::format(
        "run {} is running (pid {}): rerun it once it has ended, or end it with flow cancel {} and then rerun it",
        options.run_id, pid, options.run_id));
  if (!HasEnded(*record))
    return Status::InvalidArgument(fmt::format(
        "run {} is {}, not ended: continue it with flow resume {}, or end it with flow cancel {} and then rerun it",
        options.run_id, store::RunStatusName(record->status), options.run_id, options.run_id));
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
  // The old run's steps, as data: those it had when it ended (key `f`: steps completed
  // after its last effect are in no checkpoint), else those of its last checkpoint.
  std::string completed, doubtful, raw;
  Status ended = old.db->Get(store::kEndStepsKey, &raw);
  if (ended.ok()) {
    const std::string what = "the steps of run " + options.run_id;
    std::string_view payload;
    if (Status s = OpenRecord(raw, kEndStepsVersion, what, &payload); !s.ok()) return s;
    Reader r(payload);
    completed = std::string(r.Bytes());
    doubtful = std::string(r.Bytes());
    if (r.failed() || !r.at_end()) return Status::Corruption(what + " is malformed");
  } else if (ended.IsNotFound()) {  // a run that ended before flow kept them
    completed = EncodeSteps(old.vm->heap(), old.vm->completed_steps());
    doubtful = EncodeSteps(old.vm->heap(), old.vm->doubtful_steps());
  } else {
    return ended;
  }
  // The old run is read: only its code (when no --code) is needed from here on.
  old.vm.reset();
  old.db.reset();
  lock->reset();
  origin->seed = [&](VM& vm) -> Status {
    Value completed_map, doubtful_map;
    Status s = DecodeSteps(
        completed, vm.heap(), &completed_map, [&](const std::string& key) { origin->reused.push_back(key); },
        [&](const std::string& key, const std::string& why) { origin->not_reused.emplace_back(key, why); });
    if (s.ok())
      s = DecodeSteps(
          doubtful, vm.heap(), &doubtful_map, [&](const std::string& key) { origin->in_doubt.push_back(key); },
          [](const std::string&, const std::string&) {});
    if (!s.ok()) return Status::Corruption(fmt::format("run {}: {}", origin->run_id, s.message()));
    vm.SeedSteps(completed_map, doubtful_map);
    return Status::Ok();
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
