// Checkpoints of the VM: encoding its state, and rebuilding it with every reference checked.
// The format is docs/checkpoint.md ("VM header"): a header (counters, stack, frames,
// handlers, globals, steps, open upvalues, budget graces), then one record per heap object
// (`kind:u8 body`), each inside the record envelope of vm/base/record.h.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "vm/base/coding.h"
#include "vm/vm.h"

namespace flow {

namespace {

// Ints as zigzag varints, so that small ones of either sign take a byte or two.
uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t u) { return static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1); }

constexpr size_t kMaxValueBytes = 11;  // a tag and a 64-bit varint

char* EncodeVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

// Writes v at p (at most kMaxValueBytes) and returns the end.
char* EncodeValue(char* p, Value v) {
  *p++ = static_cast<char>(v.tag);
  switch (v.tag) {
    case Tag::kNull: return p;
    case Tag::kBool: *p++ = v.b ? 1 : 0; return p;
    case Tag::kInt: return EncodeVarint(p, ZigZag(v.i));
    case Tag::kFloat: std::memcpy(p, &v.f, 8); return p + 8;  // IEEE bits, little-endian
    default: return EncodeVarint(p, v.ref);
  }
}

void PutValue(std::string* out, Value v) {
  char buf[kMaxValueBytes];
  out->append(buf, EncodeValue(buf, v) - buf);
}

// Appends values [begin, end) to out, through one resize rather than a check per byte.
void PutValues(std::string* out, const Value* begin, const Value* end) {
  size_t at = out->size();
  out->resize(at + (end - begin) * kMaxValueBytes);
  char* p = out->data() + at;
  for (const Value* v = begin; v != end; ++v) p = EncodeValue(p, *v);
  out->resize(p - out->data());
}

bool GetValue(Reader* r, Value* v) {
  uint8_t tag = r->U8();
  if (tag > static_cast<uint8_t>(Tag::kTask)) return false;
  switch (static_cast<Tag>(tag)) {
    case Tag::kNull: *v = Value::Null(); break;
    case Tag::kBool: *v = Value::Bool(r->U8() != 0); break;
    case Tag::kInt: *v = Value::Int(UnZigZag(r->Varint())); break;
    case Tag::kFloat: {
      uint64_t bits = r->U64();
      double f;
      std::memcpy(&f, &bits, 8);
      *v = Value::Float(f);
      break;
    }
    case Tag::kBuiltin: {
      uint64_t id = r->Varint();
      if (id >= static_cast<uint64_t>(kBuiltinCount)) return false;
      *v = Value::Builtin(static_cast<uint32_t>(id));
      break;
    }
    default: {
      uint64_t id = r->Varint();
      if (id > UINT32_MAX) return false;
      *v = Value::Ref(static_cast<Tag>(tag), static_cast<uint32_t>(id));
    }
  }
  return !r->failed();
}

// A list longer than this is stored in chunks of this many items (a head record says how
// long it is), so that a push rewrites the last chunk and the head, not the list.
constexpr uint32_t kListChunkItems = 256;
// The record kind of a chunked list's head, beside the ObjKind values (on disk: do not change).
constexpr uint8_t kChunkedListRecord = 7;
// The most items a decoded chunk may say it holds (a hostile head must not make us loop long).
constexpr uint64_t kMaxChunkItems = 1 << 16;

uint32_t ChunksOf(size_t items) {
  return items <= kListChunkItems ? 0 : static_cast<uint32_t>((items + kListChunkItems - 1) / kListChunkItems);
}

void PutHandler(std::string* out, const Handler& hd);
bool GetHandler(Reader* r, Handler* hd);

// A task's execution (docs/checkpoint.md, "exec"): its counts, stack, frames, handlers,
// open upvalues and the effect it waits for.
// `at_call`: a task whose operation (an http transfer) is in flight is written as it was
// at the call, which a resumed run makes again with the same key (an operation cannot
// outlive the process).
void PutExec(std::string* out, const Task& t, bool at_call = false) {
  PutVarint(out, t.effects - (at_call ? 1 : 0));
  PutVarint(out, t.spawned);
  PutVarint(out, t.sp);
  PutValues(out, t.stack.data(), t.stack.data() + t.sp);
  PutVarint(out, t.frames.size());
  for (size_t i = 0; i < t.frames.size(); ++i) {
    const Frame& f = t.frames[i];
    PutVarint(out, f.function);
    PutVarint(out, f.closure == kNoClosure ? 0 : static_cast<uint64_t>(f.closure) + 1);
    PutVarint(out, at_call && i + 1 == t.frames.size() ? t.in_flight.call_pc : f.pc);
    PutVarint(out, f.base);
  }
  PutVarint(out, t.handlers.size());
  for (const Handler& hd : t.handlers) PutHandler(out, hd);
  PutVarint(out, t.open_upvalues.size());
  for (uint32_t id : t.open_upvalues) PutVarint(out, id);
  const InFlightEffect& f = t.in_flight;
  PutVarint(out, at_call ? 0 : f.seq);
  if (at_call || f.seq == 0) return;
  PutVarint(out, f.builtin);
  PutVarint(out, f.result_slot);
  PutVarint(out, f.call_pc);
  PutVarint(out, static_cast<uint64_t>(f.step + 1));
  PutFixed64(out, static_cast<uint64_t>(f.wake_ms));
  PutFixed8(out, f.cut_by_deadline ? 1 : 0);
}

// Reads what PutExec wrote, range-checked; checked against the program and the heap later
// (CheckExec).
bool GetExec(Reader* r, size_t functions, Task* t) {
  auto u32 = [r](uint32_t* field) {
    uint64_t v = r->Varint();
    *field = static_cast<uint32_t>(v);
    return v <= UINT32_MAX;
  };
  t->effects = r->Varint();
  if (!u32(&t->spawned) || !u32(&t->sp) || t->sp > VM::kStackCapacity || t->sp > r->remaining()) return false;
  t->stack.assign(t->sp, Value::Null());
  for (uint32_t i = 0; i < t->sp; ++i)
    if (!GetValue(r, &t->stack[i])) return false;
  uint64_t nframes = r->Varint();
  if (r->failed() || nframes == 0 || nframes > VM::kMaxFrames || nframes > r->remaining()) return false;
  t->frames.resize(nframes);
  for (Frame& f : t->frames) {
    uint64_t fn = r->Varint(), closure = r->Varint(), pc = r->Varint(), base = r->Varint();
    if (r->failed() || fn >= functions || pc > UINT32_MAX || base > t->sp || closure > UINT32_MAX) return false;
    f = {static_cast<uint32_t>(fn), closure == 0 ? kNoClosure : static_cast<uint32_t>(closure - 1),
         static_cast<uint32_t>(pc), static_cast<uint32_t>(base)};
  }
  uint64_t nhandlers = r->Varint();
  if (r->failed() || nhandlers > r->remaining()) return false;
  t->handlers.resize(nhandlers);
  for (Handler& hd : t->handlers)
    if (!GetHandler(r, &hd) || hd.frame_depth >= t->frames.size() || hd.stack_height > t->sp) return false;
  uint64_t nopen = r->Varint();
  if (r->failed() || nopen > r->remaining()) return false;
  t->open_upvalues.resize(nopen);
  for (uint32_t& id : t->open_upvalues)
    if (!u32(&id)) return false;
  InFlightEffect& f = t->in_flight;
  f.seq = r->Varint();
  if (f.seq != 0) {
    uint64_t builtin = r->Varint();
    uint64_t step = 0;
    if (!u32(&f.result_slot) || !u32(&f.call_pc)) return false;
    step = r->Varint();
    f.wake_ms = static_cast<int64_t>(r->U64());
    f.cut_by_deadline = r->U8() != 0;
    if (builtin >= static_cast<uint64_t>(kBuiltinCount) || step > nhandlers ||
        (f.result_slot >= t->sp && f.result_slot != InFlightEffect::kNoResult))
      return false;
    f.builtin = static_cast<uint16_t>(builtin);
    f.step = static_cast<int32_t>(step) - 1;
  }
  return !r->failed();
}

// A whole object's payload (a list: inline, whatever its length), appended to `out`.
void EncodeObjectInto(const Object* o, std::string* out_buffer) {
  std::string& out = *out_buffer;
  PutFixed8(&out, static_cast<uint8_t>(o->kind));
  switch (o->kind) {
    case ObjKind::kString: PutBytes(&out, static_cast<const StringObj*>(o)->text); break;
    case ObjKind::kList: {
      const auto& items = static_cast<const ListObj*>(o)->items;
      PutVarint(&out, items.size());
      PutValues(&out, items.data(), items.data() + items.size());
      break;
    }
    case ObjKind::kMap: {
      const auto& entries = static_cast<const MapObj*>(o)->entries;
      PutVarint(&out, entries.size());
      for (const auto& [k, v] : entries) {
        PutBytes(&out, k);
        PutValue(&out, v);
      }
      break;
    }
    case ObjKind::kClosure: {
      const auto* c = static_cast<const ClosureObj*>(o);
      PutVarint(&out, c->function);
      PutVarint(&out, c->upvalues.size());
      for (uint32_t id : c->upvalues) PutVarint(&out, id);
      break;
    }
    case ObjKind::kUpvalue: {
      const auto* u = static_cast<const UpvalueObj*>(o);
      PutFixed8(&out, u->open ? 1 : 0);
      PutVarint(&out, u->slot);
      PutValue(&out, u->closed);
      break;
    }
    case ObjKind::kError: {
      const auto* e = static_cast<const ErrorObj*>(o);
      PutBytes(&out, e->kind);
      PutBytes(&out, e->message);
      PutValue(&out, e->data);
      PutVarint(&out, e->trace.size());
      for (const auto& t : e->trace) PutBytes(&out, t);
      break;
    }
    case ObjKind::kSecret: {  // the pieces and variable names only: never the value
      const auto* sec = static_cast<const SecretObj*>(o);
      PutVarint(&out, sec->parts.size());
      for (const auto& p : sec->parts) {
        PutFixed8(&out, p.is_env ? 1 : 0);
        PutBytes(&out, p.text);
      }
      break;
    }
    case ObjKind::kTask: {  // the running task's execution is in the header instead
      const auto* t = static_cast<const TaskObj*>(o);
      const bool at_call = t->exec.in_flight.made_again();
      PutBytes(&out, t->path);
      PutFixed8(&out, static_cast<uint8_t>(at_call ? TaskState::kRunnable : t->state));
      PutFixed8(&out, static_cast<uint8_t>(t->cancel));
      PutFixed8(&out, t->awaited ? 1 : 0);
      PutVarint(&out, t->order);
      PutValue(&out, t->result);
      const bool parked = !t->exec.frames.empty();
      PutFixed8(&out, parked ? 1 : 0);
      if (parked) PutExec(&out, t->exec, at_call);
      break;
    }
  }
}

// Hands the records of each changed object to a delta, each with room for its envelope in
// front, built in one reused buffer.
class DeltaWriter {
 public:
  DeltaWriter(CheckpointDelta* delta, std::string* scratch, bool full) : d_(delta), out_(*scratch), full_(full) {}

  void Add(uint32_t id, const Object* o) {
    if (o->kind == ObjKind::kList) return AddList(id, static_cast<const ListObj*>(o));
    Begin();
    EncodeObjectInto(o, &out_);
    d_->Put(id, CheckpointDelta::kObject, &out_);
  }

 private:
  void Begin() { out_.assign(kRecordEnvelope, '\0'); }

  // A short list is one record; a long one, a head and the chunks holding changed items
  // (all of them when the store holds none yet, or for a full checkpoint).
  void AddList(uint32_t id, const ListObj* list) {
    auto* l = const_cast<ListObj*>(list);  // its checkpoint bookkeeping only
    const std::vector<Value>& items = l->items;
    uint32_t chunks = ChunksOf(items.size());
    Begin();
    if (chunks == 0) {
      EncodeObjectInto(l, &out_);
    } else {
      PutFixed8(&out_, kChunkedListRecord);
      PutVarint(&out_, items.size());
      PutVarint(&out_, kListChunkItems);
    }
    d_->Put(id, CheckpointDelta::kObject, &out_);
    uint32_t from = 0, to = chunks;
    if (!full_ && l->stored_chunks > 0) {  // the changed chunks, and any the store lacks
      uint64_t changed_end = (static_cast<uint64_t>(l->changed_to) + kListChunkItems - 1) / kListChunkItems;
      from = std::min<uint32_t>(chunks, l->changed_from / kListChunkItems);
      to = static_cast<uint32_t>(std::min<uint64_t>(chunks, changed_end));
      if (chunks > l->stored_chunks) from = std::min(from, l->stored_chunks), to = chunks;
    }
    for (uint32_t c = from; c < to; ++c) {
      Begin();
      size_t end = std::min<size_t>(items.size(), (static_cast<size_t>(c) + 1) * kListChunkItems);
      PutValues(&out_, items.data() + static_cast<size_t>(c) * kListChunkItems, items.data() + end);
      d_->Put(id, c, &out_);
    }
    if (l->stored_chunks > chunks) d_->DroppedChunks(id, chunks, l->stored_chunks);
    l->Checkpointed(chunks);
  }

  CheckpointDelta* d_;
  std::string& out_;
  bool full_;
};

using ChunkFetch = std::function<bool(uint32_t id, uint32_t chunk, std::string* bytes)>;

// The items of list `id` stored in chunks, after its head's kind: every chunk holds
// exactly its share of the items, and none is missing.
std::unique_ptr<ListObj> DecodeChunkedList(Reader* r, uint32_t id, const ChunkFetch& fetch) {
  uint64_t n = r->Varint(), per_chunk = r->Varint();
  if (r->failed() || !r->at_end() || per_chunk == 0 || per_chunk > kMaxChunkItems || n <= per_chunk ||
      n > UINT32_MAX)
    return nullptr;
  auto list = std::make_unique<ListObj>();
  uint64_t chunks = (n + per_chunk - 1) / per_chunk;
  std::string bytes;
  for (uint64_t c = 0; c < chunks; ++c) {
    if (!fetch || !fetch(id, static_cast<uint32_t>(c), &bytes)) return nullptr;
    Reader cr(bytes);
    uint64_t count = std::min(per_chunk, n - c * per_chunk);
    if (count > cr.remaining()) return nullptr;  // a value takes at least a byte
    for (uint64_t i = 0; i < count; ++i)
      if (!GetValue(&cr, &list->items.emplace_back())) return nullptr;
    if (!cr.at_end()) return nullptr;
  }
  list->Checkpointed(static_cast<uint32_t>(chunks));
  return list;
}

// Decodes object `id` (a chunked list's chunks fetched through `fetch`); references inside
// are checked later, once every object is in place.
Object* DecodeObject(std::string_view bytes, uint32_t id, const ChunkFetch& fetch, size_t functions) {
  Reader r(bytes);
  uint8_t kind = r.U8();
  std::unique_ptr<Object> obj;
  if (kind == kChunkedListRecord) {
    auto list = DecodeChunkedList(&r, id, fetch);
    return list ? list.release() : nullptr;
  }
  switch (static_cast<ObjKind>(kind)) {
    case ObjKind::kString: obj = std::make_unique<StringObj>(std::string(r.Bytes())); break;
    case ObjKind::kList: {
      auto list = std::make_unique<ListObj>();
      uint64_t n = r.Varint();
      if (n > r.remaining()) return nullptr;
      list->items.resize(n);
      for (auto& v : list->items)
        if (!GetValue(&r, &v)) return nullptr;
      list->Checkpointed(0);
      obj = std::move(list);
      break;
    }
    case ObjKind::kMap: {
      auto map = std::make_unique<MapObj>();
      uint64_t n = r.Varint();
      if (n > r.remaining()) return nullptr;
      for (uint64_t i = 0; i < n; ++i) {
        std::string key(r.Bytes());
        Value v;
        if (!GetValue(&r, &v)) return nullptr;
        if (map->Find(key)) return nullptr;  // duplicate keys cannot come from a real map
        map->Set(key, v);
      }
      obj = std::move(map);
      break;
    }
    case ObjKind::kClosure: {
      uint64_t fn = r.Varint();
      if (fn > UINT32_MAX) return nullptr;
      auto c = std::make_unique<ClosureObj>(static_cast<uint32_t>(fn));
      uint64_t n = r.Varint();
      if (n > r.remaining()) return nullptr;
      for (uint64_t i = 0; i < n; ++i) c->upvalues.push_back(static_cast<uint32_t>(r.Varint()));
      obj = std::move(c);
      break;
    }
    case ObjKind::kUpvalue: {
      bool open = r.U8() != 0;
      uint64_t slot = r.Varint();
      auto u = std::make_unique<UpvalueObj>(static_cast<uint32_t>(slot), kNoTask);  // its owner: CheckExec
      u->open = open;
      if (slot > UINT32_MAX || !GetValue(&r, &u->closed)) return nullptr;
      obj = std::move(u);
      break;
    }
    case ObjKind::kError: {
      std::string k(r.Bytes()), m(r.Bytes());
      Value data;
      if (!GetValue(&r, &data)) return nullptr;
      auto e = std::make_unique<ErrorObj>(std::move(k), std::move(m), data);
      uint64_t n = r.Varint();
      if (n > r.remaining()) return nullptr;
      for (uint64_t i = 0; i < n; ++i) e->trace.emplace_back(r.Bytes());
      obj = std::move(e);
      break;
    }
    case ObjKind::kSecret: {
      auto sec = std::make_unique<SecretObj>();
      uint64_t n = r.Varint();
      if (n > r.remaining()) return nullptr;
      for (uint64_t i = 0; i < n; ++i) {
        bool is_env = r.U8() != 0;
        sec->parts.push_back({is_env, std::string(r.Bytes())});
      }
      obj = std::move(sec);  // its value is re-read from the environment after the restore
      break;
    }
    case ObjKind::kTask: {
      auto t = std::make_unique<TaskObj>(std::string(r.Bytes()));
      uint8_t state = r.U8(), cancel = r.U8();
      t->awaited = r.U8() != 0;
      t->order = r.Varint();
      if (state > static_cast<uint8_t>(TaskState::kFailed) || cancel > static_cast<uint8_t>(TaskCancel::kAskedByRun) ||
          !GetValue(&r, &t->result))
        return nullptr;
      t->state = static_cast<TaskState>(state);
      t->cancel = static_cast<TaskCancel>(cancel);
      if (r.U8() != 0 && !GetExec(&r, functions, &t->exec)) return nullptr;
      obj = std::move(t);
      break;
    }
    default: return nullptr;
  }
  if (r.failed() || !r.at_end()) return nullptr;
  return obj.release();
}

// A handler: kind, frame and stack height, then the kind's own fields (docs/checkpoint.md).
[[gnu::cold]] void PutHandler(std::string* out, const Handler& hd) {
  // kind:u8, written as the varint it equals (kinds are below 128): a PutFixed8 here tips
  // GCC into calling push_back out of line in PutValue, 2% more instructions to encode a
  // large heap.
  PutVarint(out, static_cast<uint8_t>(hd.kind));
  PutVarint(out, hd.frame_depth);
  PutVarint(out, hd.stack_height);
  switch (hd.kind) {
    case HandlerKind::kTry: PutVarint(out, hd.catch_pc); break;
    case HandlerKind::kRetry:
      PutVarint(out, hd.body_pc);
      PutVarint(out, hd.attempts);
      PutVarint(out, hd.step_effects_at_open);
      PutVarint(out, hd.step_spawned_at_open);
      break;
    case HandlerKind::kTimeout: PutFixed64(out, static_cast<uint64_t>(hd.deadline_ms)); break;
    case HandlerKind::kStep:
      PutVarint(out, hd.begin_pc);
      PutVarint(out, hd.effects_done);
      PutVarint(out, hd.spawned);
      PutFixed64(out, static_cast<uint64_t>(hd.started_ms));
      break;
    case HandlerKind::kBreaker: case HandlerKind::kLimit: break;
  }
}

// False for a kind this flow does not know or a number out of range; frames and stack are
// checked by the caller.
[[gnu::cold]] bool GetHandler(Reader* r, Handler* hd) {
  auto u32 = [r](uint32_t* field) {
    uint64_t v = r->Varint();
    *field = static_cast<uint32_t>(v);
    return v <= UINT32_MAX;
  };
  uint8_t kind = r->U8();
  if (kind > static_cast<uint8_t>(HandlerKind::kLimit)) return false;
  hd->kind = static_cast<HandlerKind>(kind);
  bool ok = u32(&hd->frame_depth) && u32(&hd->stack_height);
  switch (hd->kind) {
    case HandlerKind::kTry: ok = ok && u32(&hd->catch_pc); break;
    case HandlerKind::kRetry:
      ok = ok && u32(&hd->body_pc) && u32(&hd->attempts) && u32(&hd->step_effects_at_open) &&
           u32(&hd->step_spawned_at_open);
      break;
    case HandlerKind::kTimeout: hd->deadline_ms = static_cast<int64_t>(r->U64()); break;
    case HandlerKind::kStep:
      ok = ok && u32(&hd->begin_pc) && u32(&hd->effects_done) && u32(&hd->spawned);
      hd->started_ms = static_cast<int64_t>(r->U64());
      break;
    case HandlerKind::kBreaker: case HandlerKind::kLimit: break;
  }
  return ok && !r->failed();
}

ObjKind KindFor(Tag tag) {
  switch (tag) {
    case Tag::kString: return ObjKind::kString;
    case Tag::kList: return ObjKind::kList;
    case Tag::kMap: return ObjKind::kMap;
    case Tag::kFunction: return ObjKind::kClosure;
    case Tag::kSecret: return ObjKind::kSecret;
    case Tag::kTask: return ObjKind::kTask;
    default: return ObjKind::kError;
  }
}

}  // namespace

// Past this many changed objects, collect before a checkpoint, so that garbage made since
// the last one is not written only to be deleted by the next.
constexpr size_t kCollectBeforeCheckpoint = 4096;

void VM::EncodeCheckpoint(bool full, std::string* header, CheckpointDelta* delta) {
  if (heap_.changed_count() > kCollectBeforeCheckpoint) Collect();
  std::string& h = *header;
  h.clear();
  PutVarint(&h, effects_done_);
  PutVarint(&h, instructions_);
  PutVarint(&h, tokens_used_);
  PutVarint(&h, globals_.size());
  for (const Value& g : globals_) PutValue(&h, g);
  PutValue(&h, steps_);
  PutValue(&h, doubtful_steps_);
  PutVarint(&h, constant_roots_.size());  // their objects are ids 0..n-1 (see the VM constructor)
  PutVarint(&h, heap_.capacity());
  PutVarint(&h, kBudgetKinds);
  for (const BudgetGrace& g : graces_) {
    PutVarint(&h, g.limit);
    PutVarint(&h, g.end);
  }
  // The tasks: the top level's, the list of live ones, the run queue's next place, and
  // the running one (its execution here, the parked ones' in their own records).
  PutVarint(&h, static_cast<uint64_t>(main_task_) + 1);
  PutValue(&h, live_tasks_);
  PutVarint(&h, next_order_);
  const bool running = current_ != kNoTask && !heap_.Get<TaskObj>(current_)->finished();
  PutVarint(&h, running ? static_cast<uint64_t>(current_) + 1 : 0);
  if (running) PutExec(&h, task_);

  std::vector<uint32_t>& changed = changed_ids_;  // reused between checkpoints
  std::vector<uint32_t> freed;
  std::vector<std::pair<uint32_t, uint32_t>> freed_chunks;
  heap_.TakeChanges(&changed, &freed, &freed_chunks);
  if (full) {
    heap_.ReadAllStrings();
    changed = heap_.LiveIds();
    freed.clear();
  }
  for (uint32_t id : freed) delta->Freed(id);
  // Before the records: a freed list's id may be taken by a new list that writes its own.
  for (auto [id, chunks] : freed_chunks) delta->DroppedChunks(id, 0, chunks);
  DeltaWriter writer(delta, &record_scratch_, full);
  for (uint32_t id : changed) writer.Add(id, heap_.GetObject(id));
  if (record_scratch_.capacity() > (1u << 20)) std::string().swap(record_scratch_);  // after a huge string
}

namespace {

Status Inconsistent(const std::string& what) { return Status::Corruption("checkpoint is inconsistent: " + what); }

// A checkpoint header, range-checked but not yet checked against the heap.
struct CheckpointHeader {
  uint64_t effects = 0, instructions = 0, tokens = 0, capacity = 0;
  std::vector<Value> globals;
  Value steps, doubtful_steps;
  std::vector<uint32_t> const_ids;  // the string constants' objects
  BudgetGrace graces[kBudgetKinds];
  uint32_t main_task = kNoTask, running = kNoTask;
  Value live_tasks;
  uint64_t next_order = 0;
  Task exec;  // the running task's
};

Status ReadCheckpointHeader(std::string_view bytes, const Module& module, CheckpointHeader* h) {
  Reader r(bytes);
  h->effects = r.Varint();
  h->instructions = r.Varint();
  h->tokens = r.Varint();
  uint64_t nglobals = r.Varint();
  if (r.failed() || nglobals != module.globals.size()) return Inconsistent("globals do not match the program");
  h->globals.resize(nglobals);
  for (auto& g : h->globals)
    if (!GetValue(&r, &g)) return Inconsistent("global value");
  if (!GetValue(&r, &h->steps) || (h->steps.tag != Tag::kNull && h->steps.tag != Tag::kMap)) return Inconsistent("steps");
  if (!GetValue(&r, &h->doubtful_steps) || (h->doubtful_steps.tag != Tag::kNull && h->doubtful_steps.tag != Tag::kMap))
    return Inconsistent("steps in doubt");
  uint64_t nconst = r.Varint();
  size_t string_constants = 0;
  for (const auto& c : module.constants) string_constants += c.kind == Constant::Kind::kString;
  if (r.failed() || nconst != string_constants) return Inconsistent("constants do not match the program");
  h->const_ids.resize(nconst);
  for (uint32_t i = 0; i < nconst; ++i) h->const_ids[i] = i;
  h->capacity = r.Varint();
  if (r.failed() || r.Varint() != kBudgetKinds || h->capacity > (1ull << 31)) return Inconsistent("budget graces");
  for (BudgetGrace& g : h->graces) g = {r.Varint(), r.Varint()};
  uint64_t main = r.Varint();
  if (r.failed() || main == 0 || main > h->capacity || !GetValue(&r, &h->live_tasks) || h->live_tasks.tag != Tag::kList)
    return Inconsistent("tasks");
  h->main_task = static_cast<uint32_t>(main - 1);
  h->next_order = r.Varint();
  uint64_t running = r.Varint();
  if (r.failed() || running > h->capacity) return Inconsistent("the running task");
  if (running != 0) {
    h->running = static_cast<uint32_t>(running - 1);
    if (!GetExec(&r, module.functions.size(), &h->exec)) return Inconsistent("the running task's state");
  }
  if (r.failed() || !r.at_end()) return Inconsistent("header trailer");
  return Status::Ok();
}

// Rebuilds the heap from the objects the header reaches: every id a value, frame or object
// refers to must exist with the right kind.
class ObjectLoader {
 public:
  using Fetch = std::function<bool(uint32_t id, std::string* bytes)>;
  ObjectLoader(const Module& module, Heap& heap, const Fetch& fetch, const ChunkFetch& fetch_chunk,
               const CheckpointHeader& h, bool lazy_strings)
      : module_(module),
        heap_(heap),
        fetch_(fetch),
        fetch_chunk_(fetch_chunk),
        h_(h),
        lazy_strings_(lazy_strings),
        seen_(h.capacity, false) {}

  Status Load() {
    for (const Value& v : h_.globals)
      if (!RequireValue(v)) return Inconsistent("a global refers to a missing or wrong object");
    if (!RequireValue(h_.steps) || !RequireValue(h_.doubtful_steps)) return Inconsistent("the steps table is missing");
    size_t next = 0;
    for (const auto& c : module_.constants) {
      if (c.kind != Constant::Kind::kString) continue;
      uint32_t id = h_.const_ids[next++];
      if (!RequireKind(id, ObjKind::kString) || heap_.TextOf(id) != c.s)
        return Inconsistent("the program's string constants are missing or changed");
    }
    if (!RequireKind(h_.main_task, ObjKind::kTask) || !RequireValue(h_.live_tasks) ||
        (h_.running != kNoTask && !RequireKind(h_.running, ObjKind::kTask)))
      return Inconsistent("a task is missing");
    if (h_.running != kNoTask && !RequireExec(h_.exec)) return Inconsistent("the running task refers to a missing object");
    while (!pending_.empty()) {
      uint32_t id = pending_.back();
      pending_.pop_back();
      if (!RequireChildren(heap_.GetObject(id)))
        return Inconsistent(fmt::format("object {} refers to a missing or wrong object", id));
    }
    return Status::Ok();
  }

 private:
  bool Require(uint32_t id) {
    if (id >= h_.capacity) return false;
    if (!seen_[id]) {
      if (!fetch_(id, &bytes_)) return false;
      Object* o = DecodeObject(bytes_, id, fetch_chunk_, module_.functions.size());
      if (!o) return false;
      heap_.Place(id, o);
      seen_[id] = true;
      pending_.push_back(id);
    }
    return true;
  }
  bool RequireValue(Value v) {
    if (!v.IsHeap()) return true;
    if (lazy_strings_ && v.tag == Tag::kString && v.ref < h_.capacity && !seen_[v.ref]) {
      heap_.PlaceUnreadString(v.ref);  // its record is read, and checked, when it is first used
      seen_[v.ref] = true;
      return true;
    }
    return Require(v.ref) && heap_.GetObject(v.ref)->kind == KindFor(v.tag);
  }
  bool RequireKind(uint32_t id, ObjKind kind) { return Require(id) && heap_.GetObject(id)->kind == kind; }
  // A task's execution: its stack's values, its frames' closures, its open upvalues.
  bool RequireExec(const Task& t) {
    for (uint32_t i = 0; i < t.sp; ++i)
      if (!RequireValue(t.stack[i])) return false;
    for (const Frame& f : t.frames)
      if (f.closure != kNoClosure && !RequireKind(f.closure, ObjKind::kClosure)) return false;
    for (uint32_t id : t.open_upvalues)
      if (!RequireKind(id, ObjKind::kUpvalue)) return false;
    return true;
  }

  // The objects `o` refers to, and a closure's function.
  bool RequireChildren(const Object* o) {
    bool ok = true;
    switch (o->kind) {
      case ObjKind::kString: break;
      case ObjKind::kList:
        for (const Value& v : static_cast<const ListObj*>(o)->items) ok = ok && RequireValue(v);
        break;
      case ObjKind::kMap:
        for (const auto& e : static_cast<const MapObj*>(o)->entries) ok = ok && RequireValue(e.second);
        break;
      case ObjKind::kClosure: {
        const auto* c = static_cast<const ClosureObj*>(o);
        ok = c->function > 0 && c->function < module_.functions.size() &&
             c->upvalues.size() == module_.functions[c->function].upvalues.size();
        for (uint32_t up : c->upvalues) ok = ok && RequireKind(up, ObjKind::kUpvalue);
        break;
      }
      case ObjKind::kUpvalue: {  // an open one's slot is checked against its owner (CheckExec)
        const auto* u = static_cast<const UpvalueObj*>(o);
        ok = u->open || RequireValue(u->closed);
        break;
      }
      case ObjKind::kError: ok = RequireValue(static_cast<const ErrorObj*>(o)->data); break;
      case ObjKind::kSecret: break;
      case ObjKind::kTask: {
        const auto* t = static_cast<const TaskObj*>(o);
        ok = RequireValue(t->result) && RequireExec(t->exec);
        break;
      }
    }
    return ok;
  }

  const Module& module_;
  Heap& heap_;
  const Fetch& fetch_;
  const ChunkFetch& fetch_chunk_;
  const CheckpointHeader& h_;
  const bool lazy_strings_;  // strings placed unread (the heap's StringSource reads them)
  std::string bytes_;  // reused: one object's record at a time
  std::vector<uint32_t> pending_;  // placed, their references not yet checked
  std::vector<bool> seen_;
};

// The verifier's stack depth at each instruction, computed per function when first asked.
class StackDepths {
 public:
  explicit StackDepths(const Module& module) : module_(module), depths_(module.functions.size()) {}
  int At(uint32_t fn, uint32_t pc) {
    if (depths_[fn].empty()) ComputeStackDepths(module_, fn, &depths_[fn]);
    return pc < depths_[fn].size() ? depths_[fn][pc] : -1;
  }

 private:
  const Module& module_;
  std::vector<std::vector<int>> depths_;
};

// The stack top of frame `i`: where the next frame's callee sits, or sp for the innermost.
uint32_t FrameTop(const Task& t, size_t i) { return i + 1 < t.frames.size() ? t.frames[i + 1].base + 1 : t.sp; }

// Frames must sit exactly where the verified code expects them: the stack depth at each
// frame's pc is what the verifier computed, so the dispatch loop's guarantees hold. The
// top level's bottom frame is the program's; a spawned task's is its block's closure. A
// task waiting for its effect is at the call's end, its arguments still on the stack.
Status CheckFrames(const Task& t, bool top_level, const Module& module, const Heap& heap, StackDepths* depths) {
  const std::vector<Frame>& frames = t.frames;
  if (frames[0].base != 0 || (top_level ? frames[0].function != 0 || frames[0].closure != kNoClosure
                                        : frames[0].closure == kNoClosure))
    return Inconsistent("bottom frame");
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    if (i == frames.size() - 1 && t.in_flight.seq != 0 && t.in_flight.result_slot != InFlightEffect::kNoResult)
      continue;  // at the call's end: checked in CheckInFlight
    int depth = depths->At(f.function, f.pc);
    if (depth < 0) return Inconsistent("a frame's pc is not an instruction");
    if (f.base + static_cast<uint32_t>(depth) != FrameTop(t, i)) return Inconsistent("a frame's stack does not match its code");
  }
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    if (f.closure != kNoClosure && heap.Get<ClosureObj>(f.closure)->function != f.function)
      return Inconsistent("frame closure");
    if (i > 0 && f.closure == kNoClosure && !module.functions[f.function].IsMethod()) return Inconsistent("frame closure");
    if (f.base + module.functions[f.function].max_stack > VM::kStackCapacity) return Inconsistent("frame base");
  }
  return Status::Ok();
}

// A waiting effect: its call is the instruction before the frame's pc, and its result goes
// where the callee (or the first argument of a builtin call) sits.
Status CheckInFlight(const Task& t, uint64_t effects, StackDepths* depths) {
  const InFlightEffect& e = t.in_flight;
  const Frame& f = t.frames.back();
  if (e.result_slot == InFlightEffect::kNoResult) {  // a retry's wait, at its body's start
    if (e.seq > effects || e.step != -1 || e.call_pc != f.pc || e.made_again())
      return Inconsistent("a task's waiting retry does not match its code");
    return Status::Ok();
  }
  int at_call = depths->At(f.function, e.call_pc);
  int after = depths->At(f.function, f.pc);
  if (e.seq > effects || at_call < 0 || after < 1 || e.call_pc >= f.pc ||
      f.base + static_cast<uint32_t>(after) != e.result_slot + 1 || e.result_slot >= t.sp ||
      (e.step >= 0 && t.handlers[e.step].kind != HandlerKind::kStep))
    return Inconsistent("a task's waiting effect does not match its code");
  return Status::Ok();
}

// One handler against the code at its pc. Sets *in_once_step for a `once` step.
Status CheckHandler(const Task& t, const Handler& hd, const Module& module, StackDepths* depths, bool* in_once_step) {
  const Frame& f = t.frames[hd.frame_depth];
  if (hd.stack_height <= f.base || hd.stack_height > FrameTop(t, hd.frame_depth))
    return Inconsistent("a handler's stack is outside its frame");
  switch (hd.kind) {
    case HandlerKind::kTry: {
      int depth = depths->At(f.function, hd.catch_pc);
      if (depth < 1 || f.base + static_cast<uint32_t>(depth) != hd.stack_height + 1)
        return Inconsistent("a try handler does not match its code");
      break;
    }
    case HandlerKind::kRetry: {
      int depth = depths->At(f.function, hd.body_pc);
      if (depth < 1 || f.base + static_cast<uint32_t>(depth) != hd.stack_height || hd.attempts < 1)
        return Inconsistent("a retry handler does not match its code");
      break;
    }
    case HandlerKind::kStep: {
      // Its begin_pc is its STEP_BEGIN, whose operand says whether it is `once`.
      const std::string& code = module.functions[f.function].code;
      if (t.stack[hd.stack_height - 1].tag != Tag::kString || depths->At(f.function, hd.begin_pc) < 0 ||
          static_cast<Op>(code[hd.begin_pc]) != Op::STEP_BEGIN)
        return Inconsistent("a step handler does not match its code");
      *in_once_step |= code[hd.begin_pc + 1] != 0;
      break;
    }
    case HandlerKind::kTimeout: break;
    case HandlerKind::kBreaker:
      if (t.stack[hd.stack_height - 1].tag != Tag::kList) return Inconsistent("a breaker handler has no operand");
      break;
    case HandlerKind::kLimit:
      if (t.stack[hd.stack_height - 1].tag != Tag::kList) return Inconsistent("a limit handler has no operand");
      break;
  }
  return Status::Ok();
}

// Open upvalues: listed in slot order, open, below the stack top; each gets its owner.
Status CheckOpenUpvalues(const Task& t, uint32_t owner, Heap& heap) {
  uint32_t last_slot = 0;
  for (size_t i = 0; i < t.open_upvalues.size(); ++i) {
    auto* up = const_cast<UpvalueObj*>(heap.Get<UpvalueObj>(t.open_upvalues[i]));
    if (!up->open || up->slot >= t.sp || up->owner != kNoTask) return Inconsistent("an open upvalue is not open in its task");
    if (i > 0 && up->slot <= last_slot) return Inconsistent("open upvalues out of order");
    last_slot = up->slot;
    up->owner = owner;
  }
  return Status::Ok();
}

// A task's execution against the program and the heap. Sets t->resume_in_doubt when it
// stands inside a `once` step.
Status CheckExec(Task* t, uint32_t owner, bool top_level, uint64_t effects, const Module& module, Heap& heap,
                 StackDepths* depths) {
  Status s = CheckFrames(*t, top_level, module, heap, depths);
  if (s.ok() && t->in_flight.seq != 0) s = CheckInFlight(*t, effects, depths);
  bool in_once_step = false;
  for (size_t i = 0; s.ok() && i < t->handlers.size(); ++i) {
    if (i > 0 && t->handlers[i].frame_depth < t->handlers[i - 1].frame_depth) return Inconsistent("handlers out of order");
    s = CheckHandler(*t, t->handlers[i], module, depths, &in_once_step);
  }
  if (s.ok()) s = CheckOpenUpvalues(*t, owner, heap);
  t->resume_in_doubt = in_once_step && t->in_flight.seq == 0;
  int64_t in_force = INT64_MAX;  // derived, never checkpointed (see Handler)
  int32_t step = -1;
  for (size_t i = 0; i < t->handlers.size(); ++i) {
    Handler& hd = t->handlers[i];
    if (hd.kind == HandlerKind::kTimeout) in_force = std::min(in_force, hd.deadline_ms);
    if (hd.kind == HandlerKind::kStep) step = static_cast<int32_t>(i);
    hd.deadline_in_force = in_force;
    hd.step_in_force = step;
  }
  return s;
}

// Secrets were persisted as references: read their values from the run's environment again
// (the host's).
Status RereadSecrets(Heap& heap, VmHost& host) {
  for (uint32_t id : heap.LiveIds()) {
    if (heap.GetObject(id)->kind != ObjKind::kSecret) continue;
    auto* sec = static_cast<SecretObj*>(const_cast<Object*>(heap.GetObject(id)));
    sec->value.clear();
    for (const auto& p : sec->parts) {
      if (!p.is_env) {
        sec->value += p.text;
        continue;
      }
      std::string v;
      if (!host.EnvironmentValue(p.text, &v))
        return Status::InvalidArgument(fmt::format(
            "the run holds the secret `{}`, which is not set in the environment: set it and resume again", p.text));
      sec->value += v;
    }
  }
  return Status::Ok();
}

// The tasks of a restored run: each parked task's execution checked, every task that is
// not finished among the live ones, and every open upvalue owned by one of them.
Status CheckTasks(const CheckpointHeader& h, Task* running_exec, const Module& module, Heap& heap, StackDepths* depths) {
  const std::vector<Value>& live = heap.Get<ListObj>(h.live_tasks.ref)->items;
  std::vector<bool> in_live(heap.capacity(), false);
  for (Value v : live) {
    if (v.tag != Tag::kTask || in_live[v.ref]) return Inconsistent("the list of tasks");
    in_live[v.ref] = true;
  }
  if (heap.Get<TaskObj>(h.main_task)->path != "") return Inconsistent("the top level's task");
  for (uint32_t id : heap.LiveIds()) {
    const Object* o = heap.GetObject(id);
    if (o->kind != ObjKind::kTask) continue;
    auto* t = const_cast<TaskObj*>(static_cast<const TaskObj*>(o));
    const bool running = id == h.running, parked = !t->exec.frames.empty();
    if (running ? parked || t->state != TaskState::kRunnable : parked == t->finished())
      return Inconsistent("a task's state");
    if (!t->finished() && !in_live[id]) return Inconsistent("a task that is not finished is not among the live ones");
    // A waiting task has its effect in flight; so may a runnable one (its wait has ended,
    // and the effect completes when it runs).
    const bool in_flight = parked && t->exec.in_flight.seq != 0;
    if (t->state == TaskState::kWaiting ? !in_flight : in_flight && t->state != TaskState::kRunnable)
      return Inconsistent("a waiting task without its effect");
    Task* exec = running ? running_exec : &t->exec;
    if (running || parked) {
      Status s = CheckExec(exec, id, id == h.main_task, h.effects, module, heap, depths);
      if (!s.ok()) return s;
    }
  }
  for (uint32_t id : heap.LiveIds()) {
    const Object* o = heap.GetObject(id);
    if (o->kind == ObjKind::kUpvalue && static_cast<const UpvalueObj*>(o)->open &&
        static_cast<const UpvalueObj*>(o)->owner == kNoTask)
      return Inconsistent("an open upvalue no task holds");
  }
  return Status::Ok();
}

// A restored heap's strings, each read from its record when first used.
class RecordStringSource : public StringSource {
 public:
  explicit RecordStringSource(VM::ObjectFetch fetch) : fetch_(std::move(fetch)) {}
  Status Read(uint32_t id, std::string* text) override {
    std::string bytes;
    if (!fetch_(id, &bytes)) return Status::Corruption(fmt::format("string {} of the heap is missing or damaged", id));
    Reader r(bytes);
    if (static_cast<ObjKind>(r.U8()) != ObjKind::kString)
      return Inconsistent(fmt::format("a string refers to heap object {}, which is not one", id));
    text->assign(r.Bytes());
    if (r.failed() || !r.at_end()) return Status::Corruption(fmt::format("string {} of the heap is malformed", id));
    return Status::Ok();
  }

 private:
  VM::ObjectFetch fetch_;
};

}  // namespace

Status VM::RestoreCheckpoint(std::string_view header, const ObjectFetch& object,
                             const std::function<bool(uint32_t id, uint32_t chunk, std::string* bytes)>& list_chunk,
                             ObjectFetch read_string_later) {
  CheckpointHeader h;
  Status s = ReadCheckpointHeader(header, *module_, &h);
  if (!s.ok()) return s;
  heap_.ResetForRestore(h.capacity);
  const bool lazy = static_cast<bool>(read_string_later);
  if (lazy) heap_.SetStringSource(std::make_unique<RecordStringSource>(std::move(read_string_later)));
  s = ObjectLoader(*module_, heap_, object, list_chunk, h, lazy).Load();
  StackDepths depths(*module_);
  if (s.ok()) s = CheckTasks(h, &h.exec, *module_, heap_, &depths);
  if (s.ok()) s = RereadSecrets(heap_, *host_);
  if (!s.ok()) return s;
  heap_.FinishRestore();
  heap_.StartTracking();
  effects_done_ = h.effects;
  instructions_ = h.instructions;
  tokens_used_ = h.tokens;
  globals_ = std::move(h.globals);
  steps_ = h.steps;
  doubtful_steps_ = h.doubtful_steps;
  std::copy(std::begin(h.graces), std::end(h.graces), graces_);
  constant_roots_ = std::move(h.const_ids);
  size_t next_string = 0;
  for (size_t i = 0; i < module_->constants.size(); ++i) {
    if (module_->constants[i].kind == Constant::Kind::kString)
      constants_[i] = Value::Ref(Tag::kString, constant_roots_[next_string++]);
  }
  main_task_ = h.main_task;
  live_tasks_ = h.live_tasks;
  next_order_ = h.next_order;
  current_ = kNoTask;
  if (h.running != kNoTask) {
    current_ = h.running;
    task_ = std::move(h.exec);
    FitStack();
  }
  RebuildSchedule();
  ApplyLimits();
  return Status::Ok();
}

namespace {

std::vector<VM::FrameView> FramesOf(const Module& module, const Task& t) {
  std::vector<VM::FrameView> out;
  for (size_t i = t.frames.size(); i-- > 0;) {
    const Frame& f = t.frames[i];
    const Function& fn = module.functions[f.function];
    VM::FrameView view{fn.name, module.FileOf(fn), f.pc, fn.LineAt(f.pc > 0 ? f.pc - 1 : 0), {}};
    uint32_t top = i + 1 < t.frames.size() ? t.frames[i + 1].base : t.sp;
    for (const LocalName& l : fn.locals) {
      uint32_t slot = f.base + l.slot;
      if (f.pc >= l.start_pc && f.pc <= l.end_pc && slot < top) view.locals.emplace_back(l.name, t.stack[slot]);
    }
    out.push_back(std::move(view));
  }
  return out;
}

// Spawn paths in spawn order: "2" before "10", "2" before "2.1".
bool PathBefore(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    size_t ie = a.find('.', i), je = b.find('.', j);
    if (ie == std::string::npos) ie = a.size();
    if (je == std::string::npos) je = b.size();
    if (ie - i != je - j) return ie - i < je - j;
    int c = a.compare(i, ie - i, b, j, je - j);
    if (c != 0) return c < 0;
    i = ie + 1, j = je + 1;
  }
  return a.size() < b.size();
}

}  // namespace

std::vector<VM::FrameView> VM::InspectFrames() const {
  if (main_task_ == kNoTask) return {};
  return FramesOf(*module_, current_ == main_task_ ? task_ : heap_.Get<TaskObj>(main_task_)->exec);
}

std::string VM::AssignVariable(std::string_view name, Value v) {
  if (main_task_ != kNoTask) {
    Task& t = current_ == main_task_ ? task_ : heap_.Mutable<TaskObj>(main_task_)->exec;
    for (size_t i = t.frames.size(); i-- > 0;) {  // the innermost frame that has it
      const Frame& f = t.frames[i];
      const Function& fn = module_->functions[f.function];
      uint32_t top = i + 1 < t.frames.size() ? t.frames[i + 1].base : t.sp;
      for (const LocalName& l : fn.locals) {
        uint32_t slot = f.base + l.slot;
        if (l.name == name && f.pc >= l.start_pc && f.pc <= l.end_pc && slot < top) {
          t.stack[slot] = v;
          return "local of " + fn.name;
        }
      }
    }
  }
  return SetGlobal(name, v) ? "global" : "";
}

std::vector<VM::TaskView> VM::InspectTasks() const {
  std::vector<TaskView> out;
  if (live_tasks_.tag != Tag::kList) return out;
  for (Value v : heap_.Get<ListObj>(live_tasks_.ref)->items) {
    const TaskObj* t = heap_.Get<TaskObj>(v.ref);
    const Task& exec = v.ref == current_ ? task_ : t->exec;
    TaskView view{t->path, "", "", 0, FramesOf(*module_, exec)};
    static const char* kStates[] = {"runnable", "waiting", "blocked", "done", "failed"};
    view.state = v.ref == current_ ? "running" : kStates[static_cast<int>(t->state)];
    if (t->state == TaskState::kFailed && t->result.tag == Tag::kError) {
      const ErrorObj* e = heap_.Get<ErrorObj>(t->result.ref);
      view.waits_for = e->kind + ": " + e->message;  // its error, waiting for an await
    } else if (exec.in_flight.seq != 0) {
      view.waits_for = GetBuiltinInfo(exec.in_flight.builtin).name;
      if (!exec.in_flight.made_again()) view.wake_ms = exec.in_flight.wake_ms;
    } else if (t->state == TaskState::kBlocked && !exec.frames.empty()) {
      const Frame& f = exec.frames.back();
      const std::string& code = module_->functions[f.function].code;
      switch (static_cast<Op>(code[f.pc])) {
        case Op::AWAIT: view.waits_for = "await"; break;
        case Op::PARALLEL: view.waits_for = "parallel for"; break;
        case Op::STEP_BEGIN: {
          Value key = exec.stack[exec.sp - 1];
          view.waits_for = key.tag == Tag::kString ? "step \"" + heap_.StringOf(key) + "\"" : "a step";
          break;
        }
        case Op::LIMIT_BEGIN: {  // a slot of a shared limit: [name, options]
          Value operand = exec.stack[exec.sp - 1];
          const auto* parts = operand.tag == Tag::kList ? &heap_.Get<ListObj>(operand.ref)->items : nullptr;
          view.waits_for = parts && !parts->empty() && (*parts)[0].tag == Tag::kString
                               ? "limit " + heap_.StringOf((*parts)[0])
                               : "a limit";
          break;
        }
        case Op::CALL_BUILTIN: view.waits_for = GetBuiltinInfo(DecodeFixed16(reinterpret_cast<const uint8_t*>(code.data()) + f.pc + 1)).name; break;
        default: view.waits_for = "other tasks"; break;
      }
    } else if (v.ref != current_ && !exec.frames.empty()) {
      // At an effect's call: one in flight when the checkpoint was taken (a transfer, a
      // signal wait), which a resumed run makes again.
      const Frame& f = exec.frames.back();
      const auto* code = reinterpret_cast<const uint8_t*>(module_->functions[f.function].code.data());
      if (static_cast<Op>(code[f.pc]) == Op::CALL_BUILTIN && GetBuiltinInfo(DecodeFixed16(code + f.pc + 1)).effectful) {
        view.state = "waiting";
        view.waits_for = std::string(GetBuiltinInfo(DecodeFixed16(code + f.pc + 1)).name) + " (made again on resume)";
      }
    }
    out.push_back(std::move(view));
  }
  std::sort(out.begin(), out.end(), [](const TaskView& a, const TaskView& b) { return PathBefore(a.path, b.path); });
  return out;
}


std::vector<std::pair<std::string, Value>> VM::InspectGlobals() const {
  std::vector<std::pair<std::string, Value>> out;
  for (size_t i = 0; i < globals_.size(); ++i) out.emplace_back(module_->globals[i], globals_[i]);
  return out;
}

}  // namespace flow
