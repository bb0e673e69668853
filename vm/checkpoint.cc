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
  if (tag > static_cast<uint8_t>(Tag::kSecret)) return false;
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
Object* DecodeObject(std::string_view bytes, uint32_t id, const ChunkFetch& fetch) {
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
      auto u = std::make_unique<UpvalueObj>(static_cast<uint32_t>(slot));
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
      break;
    case HandlerKind::kTimeout: PutFixed64(out, static_cast<uint64_t>(hd.deadline_ms)); break;
    case HandlerKind::kStep:
      PutVarint(out, hd.begin_pc);
      PutVarint(out, hd.effects_done);
      PutFixed64(out, static_cast<uint64_t>(hd.started_ms));
      break;
    case HandlerKind::kBreaker: break;
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
  if (kind > static_cast<uint8_t>(HandlerKind::kBreaker)) return false;
  hd->kind = static_cast<HandlerKind>(kind);
  bool ok = u32(&hd->frame_depth) && u32(&hd->stack_height);
  switch (hd->kind) {
    case HandlerKind::kTry: ok = ok && u32(&hd->catch_pc); break;
    case HandlerKind::kRetry: ok = ok && u32(&hd->body_pc) && u32(&hd->attempts) && u32(&hd->step_effects_at_open); break;
    case HandlerKind::kTimeout: hd->deadline_ms = static_cast<int64_t>(r->U64()); break;
    case HandlerKind::kStep:
      ok = ok && u32(&hd->begin_pc) && u32(&hd->effects_done);
      hd->started_ms = static_cast<int64_t>(r->U64());
      break;
    case HandlerKind::kBreaker: break;
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
  PutVarint(&h, task_.sp);
  for (uint32_t i = 0; i < task_.sp; ++i) PutValue(&h, task_.stack[i]);
  PutVarint(&h, task_.frames.size());
  for (const Frame& f : task_.frames) {
    PutVarint(&h, f.function);
    PutVarint(&h, f.closure == kNoClosure ? 0 : static_cast<uint64_t>(f.closure) + 1);
    PutVarint(&h, f.pc);
    PutVarint(&h, f.base);
  }
  PutVarint(&h, task_.handlers.size());
  for (const Handler& hd : task_.handlers) PutHandler(&h, hd);
  PutVarint(&h, globals_.size());
  for (const Value& g : globals_) PutValue(&h, g);
  PutValue(&h, steps_);
  PutVarint(&h, task_.open_upvalues.size());
  for (uint32_t id : task_.open_upvalues) PutVarint(&h, id);
  PutVarint(&h, constant_roots_.size());  // their objects are ids 0..n-1 (see the VM constructor)
  PutVarint(&h, heap_.capacity());
  PutVarint(&h, kBudgetKinds);
  for (const BudgetGrace& g : graces_) {
    PutVarint(&h, g.limit);
    PutVarint(&h, g.end);
  }

  std::vector<uint32_t>& changed = changed_ids_;  // reused between checkpoints
  std::vector<uint32_t> freed;
  std::vector<std::pair<uint32_t, uint32_t>> freed_chunks;
  heap_.TakeChanges(&changed, &freed, &freed_chunks);
  if (full) {
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

// A checkpoint header's sections, range-checked but not yet checked against the heap.
struct CheckpointHeader {
  uint64_t effects = 0, instructions = 0, tokens = 0, sp = 0, capacity = 0;
  std::vector<Value> stack;
  std::vector<Frame> frames;
  std::vector<Handler> handlers;
  std::vector<Value> globals;
  Value steps;
  std::vector<uint32_t> open;       // open upvalues, by slot
  std::vector<uint32_t> const_ids;  // the string constants' objects
  BudgetGrace graces[kBudgetKinds];
};

Status ReadStack(Reader* r, CheckpointHeader* h) {
  h->effects = r->Varint();
  h->instructions = r->Varint();
  h->tokens = r->Varint();
  h->sp = r->Varint();
  if (r->failed() || h->sp > VM::kStackCapacity || h->sp > r->remaining()) return Inconsistent("stack size");
  h->stack.resize(h->sp);
  for (auto& v : h->stack)
    if (!GetValue(r, &v)) return Inconsistent("stack value");
  return Status::Ok();
}

Status ReadFrames(Reader* r, const Module& module, CheckpointHeader* h) {
  uint64_t nframes = r->Varint();
  if (r->failed() || nframes == 0 || nframes > VM::kMaxFrames || nframes > r->remaining())
    return Inconsistent("frame count");
  h->frames.resize(nframes);
  for (auto& f : h->frames) {
    uint64_t fn = r->Varint(), closure = r->Varint(), pc = r->Varint(), base = r->Varint();
    if (r->failed() || fn >= module.functions.size() || pc > UINT32_MAX || base > h->sp) return Inconsistent("frame");
    f = {static_cast<uint32_t>(fn), closure == 0 ? kNoClosure : static_cast<uint32_t>(closure - 1),
         static_cast<uint32_t>(pc), static_cast<uint32_t>(base)};
  }
  return Status::Ok();
}

Status ReadHandlers(Reader* r, CheckpointHeader* h) {
  uint64_t nhandlers = r->Varint();
  if (r->failed() || nhandlers > r->remaining()) return Inconsistent("handler count");
  h->handlers.resize(nhandlers);
  for (auto& hd : h->handlers)
    if (!GetHandler(r, &hd) || hd.frame_depth >= h->frames.size() || hd.stack_height > h->sp)
      return Inconsistent("handler");
  return Status::Ok();
}

Status ReadGlobalsAndSteps(Reader* r, const Module& module, CheckpointHeader* h) {
  uint64_t nglobals = r->Varint();
  if (r->failed() || nglobals != module.globals.size()) return Inconsistent("globals do not match the program");
  h->globals.resize(nglobals);
  for (auto& g : h->globals)
    if (!GetValue(r, &g)) return Inconsistent("global value");
  if (!GetValue(r, &h->steps) || (h->steps.tag != Tag::kNull && h->steps.tag != Tag::kMap)) return Inconsistent("steps");
  return Status::Ok();
}

// Open upvalues, string constants, heap capacity and budget graces; then the header must end.
Status ReadHeaderTail(Reader* r, const Module& module, CheckpointHeader* h) {
  uint64_t nopen = r->Varint();
  if (r->failed() || nopen > r->remaining()) return Inconsistent("open upvalues");
  h->open.resize(nopen);
  for (auto& id : h->open) id = static_cast<uint32_t>(r->Varint());
  uint64_t nconst = r->Varint();
  size_t string_constants = 0;
  for (const auto& c : module.constants) string_constants += c.kind == Constant::Kind::kString;
  if (r->failed() || nconst != string_constants) return Inconsistent("constants do not match the program");
  h->const_ids.resize(nconst);
  for (uint32_t i = 0; i < nconst; ++i) h->const_ids[i] = i;
  h->capacity = r->Varint();
  if (r->failed() || r->Varint() != kBudgetKinds) return Inconsistent("budget graces");
  for (BudgetGrace& g : h->graces) g = {r->Varint(), r->Varint()};
  if (r->failed() || !r->at_end() || h->capacity > (1ull << 31)) return Inconsistent("header trailer");
  return Status::Ok();
}

Status ReadCheckpointHeader(std::string_view bytes, const Module& module, CheckpointHeader* h) {
  Reader r(bytes);
  Status s = ReadStack(&r, h);
  if (s.ok()) s = ReadFrames(&r, module, h);
  if (s.ok()) s = ReadHandlers(&r, h);
  if (s.ok()) s = ReadGlobalsAndSteps(&r, module, h);
  if (s.ok()) s = ReadHeaderTail(&r, module, h);
  return s;
}

// Rebuilds the heap from the objects the header reaches: every id a value, frame or object
// refers to must exist with the right kind.
class ObjectLoader {
 public:
  using Fetch = std::function<bool(uint32_t id, std::string* bytes)>;
  ObjectLoader(const Module& module, Heap& heap, const Fetch& fetch, const ChunkFetch& fetch_chunk,
               const CheckpointHeader& h)
      : module_(module), heap_(heap), fetch_(fetch), fetch_chunk_(fetch_chunk), h_(h), seen_(h.capacity, false) {}

  Status Load() {
    for (const Value& v : h_.stack)
      if (!RequireValue(v)) return Inconsistent("a stack value refers to a missing or wrong object");
    for (const Value& v : h_.globals)
      if (!RequireValue(v)) return Inconsistent("a global refers to a missing or wrong object");
    if (!RequireValue(h_.steps)) return Inconsistent("the steps table is missing");
    size_t next = 0;
    for (const auto& c : module_.constants) {
      if (c.kind != Constant::Kind::kString) continue;
      uint32_t id = h_.const_ids[next++];
      if (!RequireKind(id, ObjKind::kString) || heap_.Get<StringObj>(id)->text != c.s)
        return Inconsistent("the program's string constants are missing or changed");
    }
    for (uint32_t id : h_.open)
      if (!RequireKind(id, ObjKind::kUpvalue)) return Inconsistent("an open upvalue is missing");
    for (const Frame& f : h_.frames)
      if (f.closure != kNoClosure && !RequireKind(f.closure, ObjKind::kClosure))
        return Inconsistent("a frame's closure is missing");
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
      Object* o = DecodeObject(bytes_, id, fetch_chunk_);
      if (!o) return false;
      heap_.Place(id, o);
      seen_[id] = true;
      pending_.push_back(id);
    }
    return true;
  }
  bool RequireValue(Value v) {
    if (!v.IsHeap()) return true;
    return Require(v.ref) && heap_.GetObject(v.ref)->kind == KindFor(v.tag);
  }
  bool RequireKind(uint32_t id, ObjKind kind) { return Require(id) && heap_.GetObject(id)->kind == kind; }

  // The objects `o` refers to, and a closure's function and an open upvalue's slot.
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
      case ObjKind::kUpvalue: {
        const auto* u = static_cast<const UpvalueObj*>(o);
        ok = u->open ? u->slot < h_.sp : RequireValue(u->closed);
        break;
      }
      case ObjKind::kError: ok = RequireValue(static_cast<const ErrorObj*>(o)->data); break;
      case ObjKind::kSecret: break;
    }
    return ok;
  }

  const Module& module_;
  Heap& heap_;
  const Fetch& fetch_;
  const ChunkFetch& fetch_chunk_;
  const CheckpointHeader& h_;
  std::string bytes_;  // reused: one object's record at a time
  std::vector<uint32_t> pending_;  // placed, their references not yet checked
  std::vector<bool> seen_;
};

Status CheckOpenUpvalues(const CheckpointHeader& h, const Heap& heap) {
  for (uint32_t id : h.open)
    if (!heap.Get<UpvalueObj>(id)->open) return Inconsistent("a closed upvalue is listed as open");
  for (size_t i = 1; i < h.open.size(); ++i)
    if (heap.Get<UpvalueObj>(h.open[i - 1])->slot >= heap.Get<UpvalueObj>(h.open[i])->slot)
      return Inconsistent("open upvalues out of order");
  return Status::Ok();
}

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
uint32_t FrameTop(const CheckpointHeader& h, size_t i) {
  return i + 1 < h.frames.size() ? h.frames[i + 1].base + 1 : static_cast<uint32_t>(h.sp);
}

// Frames must sit exactly where the verified code expects them: the stack depth at each
// frame's pc is what the verifier computed, so the dispatch loop's guarantees hold.
Status CheckFrames(const CheckpointHeader& h, const Module& module, const Heap& heap, StackDepths* depths) {
  const std::vector<Frame>& frames = h.frames;
  if (frames[0].function != 0 || frames[0].base != 0 || frames[0].closure != kNoClosure)
    return Inconsistent("bottom frame");
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    int depth = depths->At(f.function, f.pc);
    if (depth < 0) return Inconsistent("a frame's pc is not an instruction");
    if (f.base + static_cast<uint32_t>(depth) != FrameTop(h, i)) return Inconsistent("a frame's stack does not match its code");
    if (i > 0) {
      if (f.closure == kNoClosure || heap.Get<ClosureObj>(f.closure)->function != f.function)
        return Inconsistent("frame closure");
      if (f.base + module.functions[f.function].max_stack > VM::kStackCapacity) return Inconsistent("frame base");
    }
  }
  return Status::Ok();
}

// One handler against the code at its pc. Sets *in_once_step for a `once` step.
Status CheckHandler(const CheckpointHeader& h, const Handler& hd, const Module& module, StackDepths* depths,
                    bool* in_once_step) {
  const Frame& f = h.frames[hd.frame_depth];
  if (hd.stack_height <= f.base || hd.stack_height > FrameTop(h, hd.frame_depth))
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
      if (h.stack[hd.stack_height - 1].tag != Tag::kString || depths->At(f.function, hd.begin_pc) < 0 ||
          static_cast<Op>(code[hd.begin_pc]) != Op::STEP_BEGIN)
        return Inconsistent("a step handler does not match its code");
      *in_once_step |= code[hd.begin_pc + 1] != 0;
      break;
    }
    case HandlerKind::kTimeout: break;
    case HandlerKind::kBreaker:
      if (h.stack[hd.stack_height - 1].tag != Tag::kList) return Inconsistent("a breaker handler has no operand");
      break;
  }
  return Status::Ok();
}

Status CheckHandlers(const CheckpointHeader& h, const Module& module, StackDepths* depths, bool* in_once_step) {
  for (size_t i = 0; i < h.handlers.size(); ++i) {
    if (i > 0 && h.handlers[i].frame_depth < h.handlers[i - 1].frame_depth) return Inconsistent("handlers out of order");
    Status s = CheckHandler(h, h.handlers[i], module, depths, in_once_step);
    if (!s.ok()) return s;
  }
  return Status::Ok();
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

}  // namespace

Status VM::RestoreCheckpoint(std::string_view header,
                             const std::function<bool(uint32_t id, std::string* bytes)>& object,
                             const std::function<bool(uint32_t id, uint32_t chunk, std::string* bytes)>& list_chunk) {
  CheckpointHeader h;
  Status s = ReadCheckpointHeader(header, *module_, &h);
  if (!s.ok()) return s;
  heap_.ResetForRestore(h.capacity);
  s = ObjectLoader(*module_, heap_, object, list_chunk, h).Load();
  if (s.ok()) s = CheckOpenUpvalues(h, heap_);
  StackDepths depths(*module_);
  if (s.ok()) s = CheckFrames(h, *module_, heap_, &depths);
  bool in_once_step = false;
  if (s.ok()) s = CheckHandlers(h, *module_, &depths, &in_once_step);
  if (s.ok()) s = RereadSecrets(heap_, *host_);
  if (!s.ok()) return s;
  heap_.FinishRestore();
  heap_.StartTracking();
  effects_done_ = h.effects;
  instructions_ = h.instructions;
  tokens_used_ = h.tokens;
  task_.sp = static_cast<uint32_t>(h.sp);
  uint32_t needed = task_.sp;  // the stack as deep as the restored frames may use it
  for (const Frame& f : h.frames) needed = std::max(needed, f.base + module_->functions[f.function].max_stack);
  GrowStack(needed);
  for (uint32_t i = 0; i < task_.sp; ++i) task_.stack[i] = h.stack[i];
  task_.frames = std::move(h.frames);
  task_.handlers.clear();
  for (const Handler& hd : h.handlers) PushHandler(hd);
  globals_ = std::move(h.globals);
  steps_ = h.steps;
  std::copy(std::begin(h.graces), std::end(h.graces), graces_);
  ApplyLimits();
  task_.resume_in_doubt = in_once_step;
  task_.open_upvalues = std::move(h.open);
  constant_roots_ = std::move(h.const_ids);
  size_t next_string = 0;
  for (size_t i = 0; i < module_->constants.size(); ++i) {
    if (module_->constants[i].kind == Constant::Kind::kString)
      constants_[i] = Value::Ref(Tag::kString, constant_roots_[next_string++]);
  }
  return Status::Ok();
}

std::vector<VM::FrameView> VM::InspectFrames() const {
  std::vector<FrameView> out;
  for (size_t i = task_.frames.size(); i-- > 0;) {
    const Frame& f = task_.frames[i];
    const Function& fn = module_->functions[f.function];
    FrameView view{fn.name, f.pc, fn.LineAt(f.pc > 0 ? f.pc - 1 : 0), {}};
    uint32_t top = i + 1 < task_.frames.size() ? task_.frames[i + 1].base : task_.sp;
    for (const LocalName& l : fn.locals) {
      uint32_t slot = f.base + l.slot;
      if (f.pc >= l.start_pc && f.pc <= l.end_pc && slot < top) view.locals.emplace_back(l.name, task_.stack[slot]);
    }
    out.push_back(std::move(view));
  }
  return out;
}

std::vector<std::pair<std::string, Value>> VM::InspectGlobals() const {
  std::vector<std::pair<std::string, Value>> out;
  for (size_t i = 0; i < globals_.size(); ++i) out.emplace_back(module_->globals[i], globals_[i]);
  return out;
}

}  // namespace flow
