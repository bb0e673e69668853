// Checkpoints of the VM: encoding its state, and rebuilding it with every reference checked.
// The format is docs/checkpoint.md ("VM header"): a header (counters, stack, frames,
// handlers, globals, steps, open upvalues, budget graces), then one record per heap object
// (`kind:u8 body`), each inside the record envelope of vm/base/record.h.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "vm/base/coding.h"
#include "vm/vm.h"

namespace flow {

namespace {

void PutValue(std::string* out, Value v) {
  PutFixed8(out, static_cast<uint8_t>(v.tag));
  switch (v.tag) {
    case Tag::kNull: break;
    case Tag::kBool: PutFixed8(out, v.b ? 1 : 0); break;
    case Tag::kInt: PutFixed64(out, static_cast<uint64_t>(v.i)); break;
    case Tag::kFloat: {
      uint64_t bits;
      std::memcpy(&bits, &v.f, 8);
      PutFixed64(out, bits);
      break;
    }
    default: PutVarint(out, v.ref); break;
  }
}

bool GetValue(Reader* r, Value* v) {
  uint8_t tag = r->U8();
  if (tag > static_cast<uint8_t>(Tag::kSecret)) return false;
  switch (static_cast<Tag>(tag)) {
    case Tag::kNull: *v = Value::Null(); break;
    case Tag::kBool: *v = Value::Bool(r->U8() != 0); break;
    case Tag::kInt: *v = Value::Int(static_cast<int64_t>(r->U64())); break;
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

std::string EncodeObject(const Object* o) {
  std::string out;
  PutFixed8(&out, static_cast<uint8_t>(o->kind));
  switch (o->kind) {
    case ObjKind::kString: PutBytes(&out, static_cast<const StringObj*>(o)->text); break;
    case ObjKind::kList: {
      const auto& items = static_cast<const ListObj*>(o)->items;
      PutVarint(&out, items.size());
      for (const Value& v : items) PutValue(&out, v);
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
  return out;
}

// Decodes one object; references inside are checked later, once every object is in place.
Object* DecodeObject(std::string_view bytes) {
  Reader r(bytes);
  uint8_t kind = r.U8();
  std::unique_ptr<Object> obj;
  switch (static_cast<ObjKind>(kind)) {
    case ObjKind::kString: obj = std::make_unique<StringObj>(std::string(r.Bytes())); break;
    case ObjKind::kList: {
      auto list = std::make_unique<ListObj>();
      uint64_t n = r.Varint();
      if (n > r.remaining()) return nullptr;
      list->items.resize(n);
      for (auto& v : list->items)
        if (!GetValue(&r, &v)) return nullptr;
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

void VM::EncodeCheckpoint(bool full, CheckpointDelta* out) {
  if (heap_.changed_count() > kCollectBeforeCheckpoint) Collect();
  std::string& h = out->header;
  h.clear();
  PutVarint(&h, effects_done_);
  PutVarint(&h, instructions_);
  PutVarint(&h, tokens_used_);
  PutVarint(&h, sp_);
  for (uint32_t i = 0; i < sp_; ++i) PutValue(&h, stack_[i]);
  PutVarint(&h, frames_.size());
  for (const Frame& f : frames_) {
    PutVarint(&h, f.function);
    PutVarint(&h, f.closure == kNoClosure ? 0 : static_cast<uint64_t>(f.closure) + 1);
    PutVarint(&h, f.pc);
    PutVarint(&h, f.base);
  }
  PutVarint(&h, handlers_.size());
  for (const Handler& hd : handlers_) {
    PutFixed8(&h, static_cast<uint8_t>(hd.kind));
    PutVarint(&h, hd.frame_depth);
    PutVarint(&h, hd.stack_height);
    PutVarint(&h, hd.pc);
    PutVarint(&h, hd.count);
    PutFixed64(&h, static_cast<uint64_t>(hd.deadline));
    PutVarint(&h, hd.step_count_at_open);
  }
  PutVarint(&h, globals_.size());
  for (const Value& g : globals_) PutValue(&h, g);
  PutValue(&h, steps_);
  PutVarint(&h, open_upvalues_.size());
  for (uint32_t id : open_upvalues_) PutVarint(&h, id);
  PutVarint(&h, constant_roots_.size());  // their objects are ids 0..n-1 (see the VM constructor)
  PutVarint(&h, heap_.capacity());
  PutVarint(&h, kBudgetKinds);
  for (const BudgetGrace& g : graces_) {
    PutVarint(&h, g.limit);
    PutVarint(&h, g.end);
  }

  std::vector<uint32_t>& changed = changed_ids_;  // reused between checkpoints
  heap_.TakeChanges(&changed, &out->freed);
  if (full) {
    changed = heap_.LiveIds();
    out->freed.clear();
  }
  out->objects.clear();
  out->objects.reserve(changed.size());
  for (uint32_t id : changed) out->objects.emplace_back(id, EncodeObject(heap_.GetObject(id)));
}

bool VmHost::SecretValue(const std::string& name, std::string* value) {
  const char* v = std::getenv(name.c_str());
  if (v) *value = v;
  return v != nullptr;
}

Status VM::RestoreCheckpoint(std::string_view header,
                             const std::function<bool(uint32_t id, std::string* bytes)>& object) {
  auto bad = [](const std::string& what) { return Status::Corruption("checkpoint is inconsistent: " + what); };
  Reader r(header);
  uint64_t effects = r.Varint();
  uint64_t instructions = r.Varint();
  uint64_t tokens = r.Varint();
  uint64_t sp = r.Varint();
  if (r.failed() || sp > kStackCapacity || sp > r.remaining()) return bad("stack size");
  std::vector<Value> stack(sp);
  for (auto& v : stack)
    if (!GetValue(&r, &v)) return bad("stack value");
  uint64_t nframes = r.Varint();
  if (r.failed() || nframes == 0 || nframes > kMaxFrames || nframes > r.remaining()) return bad("frame count");
  std::vector<Frame> frames(nframes);
  for (auto& f : frames) {
    uint64_t fn = r.Varint(), closure = r.Varint(), pc = r.Varint(), base = r.Varint();
    if (r.failed() || fn >= module_->functions.size() || pc > UINT32_MAX || base > sp) return bad("frame");
    f = {static_cast<uint32_t>(fn), closure == 0 ? kNoClosure : static_cast<uint32_t>(closure - 1),
         static_cast<uint32_t>(pc), static_cast<uint32_t>(base)};
  }
  uint64_t nhandlers = r.Varint();
  if (r.failed() || nhandlers > r.remaining()) return bad("handler count");
  std::vector<Handler> handlers(nhandlers);
  for (auto& hd : handlers) {
    uint8_t kind = r.U8();
    uint64_t depth = r.Varint(), height = r.Varint(), pc = r.Varint(), count = r.Varint();
    int64_t deadline = static_cast<int64_t>(r.U64());
    uint64_t step_count_at_open = r.Varint();
    if (r.failed() || kind > static_cast<uint8_t>(HandlerKind::kBreaker) || depth >= nframes || height > sp ||
        pc > UINT32_MAX || count > UINT32_MAX || step_count_at_open > UINT32_MAX)
      return bad("handler");
    hd = {static_cast<HandlerKind>(kind), static_cast<uint32_t>(depth), static_cast<uint32_t>(height),
          static_cast<uint32_t>(pc), static_cast<uint32_t>(count), deadline, static_cast<uint32_t>(step_count_at_open)};
  }
  uint64_t nglobals = r.Varint();
  if (r.failed() || nglobals != module_->globals.size()) return bad("globals do not match the program");
  std::vector<Value> globals(nglobals);
  for (auto& g : globals)
    if (!GetValue(&r, &g)) return bad("global value");
  Value steps;
  if (!GetValue(&r, &steps) || (steps.tag != Tag::kNull && steps.tag != Tag::kMap)) return bad("steps");
  uint64_t nopen = r.Varint();
  if (r.failed() || nopen > r.remaining()) return bad("open upvalues");
  std::vector<uint32_t> open(nopen);
  for (auto& id : open) id = static_cast<uint32_t>(r.Varint());
  uint64_t nconst = r.Varint();
  size_t string_constants = 0;
  for (const auto& c : module_->constants) string_constants += c.kind == Constant::Kind::kString;
  if (r.failed() || nconst != string_constants) return bad("constants do not match the program");
  std::vector<uint32_t> const_ids(nconst);
  for (uint32_t i = 0; i < nconst; ++i) const_ids[i] = i;
  uint64_t capacity = r.Varint();
  BudgetGrace graces[kBudgetKinds];
  if (r.failed() || r.Varint() != kBudgetKinds) return bad("budget graces");
  for (BudgetGrace& g : graces) g = {r.Varint(), r.Varint()};
  if (r.failed() || !r.at_end() || capacity > (1ull << 31)) return bad("header trailer");

  // Objects: every id a value, frame or object refers to must exist with the right kind.
  heap_.ResetForRestore(capacity);
  std::vector<uint32_t> pending;
  std::vector<bool> seen(capacity, false);
  auto require = [&](uint32_t id) -> bool {
    if (id >= capacity) return false;
    if (!seen[id]) {
      std::string bytes;
      if (!object(id, &bytes)) return false;
      Object* o = DecodeObject(bytes);
      if (!o) return false;
      heap_.Place(id, o);
      seen[id] = true;
      pending.push_back(id);
    }
    return true;
  };
  auto require_value = [&](Value v) -> bool {
    if (!v.IsHeap()) return true;
    return require(v.ref) && heap_.GetObject(v.ref)->kind == KindFor(v.tag);
  };
  auto require_kind = [&](uint32_t id, ObjKind kind) { return require(id) && heap_.GetObject(id)->kind == kind; };
  for (const Value& v : stack)
    if (!require_value(v)) return bad("a stack value refers to a missing or wrong object");
  for (const Value& v : globals)
    if (!require_value(v)) return bad("a global refers to a missing or wrong object");
  if (!require_value(steps)) return bad("the steps table is missing");
  {
    size_t next = 0;
    for (const auto& c : module_->constants) {
      if (c.kind != Constant::Kind::kString) continue;
      uint32_t id = const_ids[next++];
      if (!require_kind(id, ObjKind::kString) || heap_.Get<StringObj>(id)->text != c.s)
        return bad("the program's string constants are missing or changed");
    }
  }
  for (uint32_t id : open)
    if (!require_kind(id, ObjKind::kUpvalue)) return bad("an open upvalue is missing");
  for (const Frame& f : frames)
    if (f.closure != kNoClosure && !require_kind(f.closure, ObjKind::kClosure)) return bad("a frame's closure is missing");
  while (!pending.empty()) {
    uint32_t id = pending.back();
    pending.pop_back();
    const Object* o = heap_.GetObject(id);
    bool ok = true;
    switch (o->kind) {
      case ObjKind::kString: break;
      case ObjKind::kList:
        for (const Value& v : static_cast<const ListObj*>(o)->items) ok = ok && require_value(v);
        break;
      case ObjKind::kMap:
        for (const auto& e : static_cast<const MapObj*>(o)->entries) ok = ok && require_value(e.second);
        break;
      case ObjKind::kClosure: {
        const auto* c = static_cast<const ClosureObj*>(o);
        ok = c->function > 0 && c->function < module_->functions.size() &&
             c->upvalues.size() == module_->functions[c->function].upvalues.size();
        for (uint32_t up : c->upvalues) ok = ok && require_kind(up, ObjKind::kUpvalue);
        break;
      }
      case ObjKind::kUpvalue: {
        const auto* u = static_cast<const UpvalueObj*>(o);
        ok = u->open ? u->slot < sp : require_value(u->closed);
        break;
      }
      case ObjKind::kError: ok = require_value(static_cast<const ErrorObj*>(o)->data); break;
      case ObjKind::kSecret: break;
    }
    if (!ok) return bad(fmt::format("object {} refers to a missing or wrong object", id));
  }
  for (uint32_t id : open)
    if (!heap_.Get<UpvalueObj>(id)->open) return bad("a closed upvalue is listed as open");
  for (size_t i = 1; i < open.size(); ++i)
    if (heap_.Get<UpvalueObj>(open[i - 1])->slot >= heap_.Get<UpvalueObj>(open[i])->slot)
      return bad("open upvalues out of order");

  // Frames must sit exactly where the verified code expects them: the stack depth at each
  // frame's pc is what the verifier computed, so the dispatch loop's guarantees hold.
  std::vector<std::vector<int>> depths(module_->functions.size());
  auto depth_at = [&](uint32_t fn, uint32_t pc) -> int {
    if (depths[fn].empty()) ComputeStackDepths(*module_, fn, &depths[fn]);
    return pc < depths[fn].size() ? depths[fn][pc] : -1;
  };
  if (frames[0].function != 0 || frames[0].base != 0 || frames[0].closure != kNoClosure) return bad("bottom frame");
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    int depth = depth_at(f.function, f.pc);
    if (depth < 0) return bad("a frame's pc is not an instruction");
    uint32_t top = i + 1 < frames.size() ? frames[i + 1].base + 1 : static_cast<uint32_t>(sp);
    if (f.base + static_cast<uint32_t>(depth) != top) return bad("a frame's stack does not match its code");
    if (i > 0) {
      if (f.closure == kNoClosure || heap_.Get<ClosureObj>(f.closure)->function != f.function) return bad("frame closure");
      if (f.base + module_->functions[f.function].max_stack > kStackCapacity) return bad("frame base");
    }
  }
  bool in_once_step = false;
  for (size_t i = 0; i < handlers.size(); ++i) {
    const Handler& hd = handlers[i];
    if (i > 0 && hd.frame_depth < handlers[i - 1].frame_depth) return bad("handlers out of order");
    const Frame& f = frames[hd.frame_depth];
    uint32_t frame_top = hd.frame_depth + 1 < frames.size() ? frames[hd.frame_depth + 1].base + 1 : static_cast<uint32_t>(sp);
    if (hd.stack_height <= f.base || hd.stack_height > frame_top) return bad("a handler's stack is outside its frame");
    switch (hd.kind) {
      case HandlerKind::kTry: {
        int depth = depth_at(f.function, hd.pc);
        if (depth < 1 || f.base + static_cast<uint32_t>(depth) != hd.stack_height + 1)
          return bad("a try handler does not match its code");
        break;
      }
      case HandlerKind::kRetry: {
        int depth = depth_at(f.function, hd.pc);
        if (depth < 1 || f.base + static_cast<uint32_t>(depth) != hd.stack_height || hd.count < 1)
          return bad("a retry handler does not match its code");
        break;
      }
      case HandlerKind::kStep: {
        // Its pc is its STEP_BEGIN, whose operand says whether it is `once`.
        const std::string& code = module_->functions[f.function].code;
        if (stack[hd.stack_height - 1].tag != Tag::kString || depth_at(f.function, hd.pc) < 0 ||
            static_cast<Op>(code[hd.pc]) != Op::STEP_BEGIN)
          return bad("a step handler does not match its code");
        in_once_step |= code[hd.pc + 1] != 0;
        break;
      }
      case HandlerKind::kTimeout: break;
      case HandlerKind::kBreaker:
        if (stack[hd.stack_height - 1].tag != Tag::kList) return bad("a breaker handler has no operand");
        break;
    }
  }

  // Secrets were persisted as references: read their values from the environment again.
  for (uint32_t id : heap_.LiveIds()) {
    if (heap_.GetObject(id)->kind != ObjKind::kSecret) continue;
    auto* sec = static_cast<SecretObj*>(const_cast<Object*>(heap_.GetObject(id)));
    sec->value.clear();
    for (const auto& p : sec->parts) {
      if (!p.is_env) {
        sec->value += p.text;
        continue;
      }
      std::string v;
      if (!host_->SecretValue(p.text, &v))
        return Status::InvalidArgument(fmt::format(
            "the run holds the secret `{}`, which is not set in the environment: set it and resume again", p.text));
      sec->value += v;
    }
  }
  heap_.FinishRestore();
  heap_.StartTracking();
  effects_done_ = effects;
  instructions_ = instructions;
  tokens_used_ = tokens;
  sp_ = static_cast<uint32_t>(sp);
  for (uint32_t i = 0; i < sp_; ++i) stack_[i] = stack[i];
  frames_ = std::move(frames);
  handlers_.clear();
  for (const Handler& hd : handlers) PushHandler(hd);
  globals_ = std::move(globals);
  steps_ = steps;
  std::copy(std::begin(graces), std::end(graces), graces_);
  ApplyLimits();
  resume_in_doubt_ = in_once_step;
  open_upvalues_ = std::move(open);
  constant_roots_ = std::move(const_ids);
  size_t next_string = 0;
  for (size_t i = 0; i < module_->constants.size(); ++i) {
    if (module_->constants[i].kind == Constant::Kind::kString)
      constants_[i] = Value::Ref(Tag::kString, constant_roots_[next_string++]);
  }
  return Status::Ok();
}

std::vector<VM::FrameView> VM::InspectFrames() const {
  std::vector<FrameView> out;
  for (size_t i = frames_.size(); i-- > 0;) {
    const Frame& f = frames_[i];
    const Function& fn = module_->functions[f.function];
    FrameView view{fn.name, f.pc, fn.LineAt(f.pc > 0 ? f.pc - 1 : 0), {}};
    uint32_t top = i + 1 < frames_.size() ? frames_[i + 1].base : sp_;
    for (const LocalName& l : fn.locals) {
      uint32_t slot = f.base + l.slot;
      if (f.pc >= l.start_pc && f.pc <= l.end_pc && slot < top) view.locals.emplace_back(l.name, stack_[slot]);
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
