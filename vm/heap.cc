#include "vm/heap.h"

#include <fmt/format.h>

#include <algorithm>

namespace flow {

const char* TypeName(Tag tag) {
  switch (tag) {
    case Tag::kNull: return "null";
    case Tag::kBool: return "bool";
    case Tag::kInt: return "int";
    case Tag::kFloat: return "float";
    case Tag::kBuiltin: case Tag::kFunction: return "function";
    case Tag::kString: return "string";
    case Tag::kList: return "list";
    case Tag::kMap: return "map";
    case Tag::kError: return "error";
    case Tag::kSecret: return "secret";
    case Tag::kTask: return "task";
  }
  return "?";
}

Heap::~Heap() {
  for (Object* o : objects_) delete o;
}

size_t ObjectBytes(const Object* o) {
  // A map entry: the key twice (entries and index), the value, a hash node.
  constexpr size_t kMapEntryBytes = 2 * sizeof(std::string) + sizeof(Value) + 32;
  switch (o->kind) {
    case ObjKind::kString: return sizeof(StringObj) + static_cast<const StringObj*>(o)->text.capacity();
    case ObjKind::kList: return sizeof(ListObj) + static_cast<const ListObj*>(o)->items.capacity() * sizeof(Value);
    case ObjKind::kMap: return sizeof(MapObj) + static_cast<const MapObj*>(o)->entries.capacity() * kMapEntryBytes;
    case ObjKind::kClosure:
      return sizeof(ClosureObj) + static_cast<const ClosureObj*>(o)->upvalues.capacity() * sizeof(uint32_t);
    case ObjKind::kUpvalue: return sizeof(UpvalueObj);
    case ObjKind::kError: {
      const auto* e = static_cast<const ErrorObj*>(o);
      return sizeof(ErrorObj) + e->message.capacity() + e->trace.size() * (sizeof(std::string) + 32);
    }
    case ObjKind::kSecret: return sizeof(SecretObj) + static_cast<const SecretObj*>(o)->value.capacity();
    case ObjKind::kTask: {
      const Task& t = static_cast<const TaskObj*>(o)->exec;
      return sizeof(TaskObj) + t.stack.capacity() * sizeof(Value) + t.frames.capacity() * sizeof(Frame) +
             t.handlers.capacity() * sizeof(Handler);
    }
  }
  return sizeof(Object);
}

void Heap::SetEntry(uint32_t map, std::string_view key, Value v) {
  MapObj* m = Mutable<MapObj>(map);
  size_t before = ObjectBytes(m);
  m->Set(key, v);
  size_t after = ObjectBytes(m);
  if (after != before) Grew(after - before);
}

void Heap::set_memory_budget(size_t bytes) {
  memory_budget_ = bytes;
  SetCollectThreshold();
}

// The next collection comes when the bytes double, or sooner near the memory budget (an
// eighth of it past the live bytes), so that the budget is checked before it is far exceeded.
void Heap::SetCollectThreshold() {
  collect_at_bytes_ = std::max(kMinCollectBytes, 2 * bytes_);
  if (memory_budget_ != SIZE_MAX)
    collect_at_bytes_ = std::min(collect_at_bytes_, std::max(memory_budget_, bytes_ + memory_budget_ / 8));
  if (bytes_ >= collect_at_bytes_) next_gc_ = 0;
}

uint32_t Heap::Add(Object* obj) {
  ever_held_secret_ |= obj->kind == ObjKind::kSecret;
  ++live_;
  ++allocated_since_gc_;
  Grew(ObjectBytes(obj));
  uint32_t id = Insert(obj);
  if (tracking_) {
    obj->dirty = true;
    dirty_ids_.push_back(id);
  }
  return id;
}

uint32_t Heap::Insert(Object* obj) {
  if (!free_ids_.empty()) {
    uint32_t id = free_ids_.back();
    free_ids_.pop_back();
    objects_[id] = obj;
    return id;
  }
  objects_.push_back(obj);
  return static_cast<uint32_t>(objects_.size() - 1);
}

void Heap::Collect(const std::function<void(const std::function<void(Value)>&)>& mark_roots,
                   const std::vector<uint32_t>& extra_object_roots) {
  // An explicit work list: deep structures must not recurse on the C++ stack.
  std::vector<uint32_t> gray;
  auto mark_id = [&](uint32_t id) {
    Object* o = objects_[id];
    if (o && !o->marked) {
      o->marked = true;
      gray.push_back(id);
    }
  };
  auto mark_value = [&](Value v) {
    if (v.IsHeap()) mark_id(v.ref);
  };
  mark_roots(mark_value);
  for (uint32_t id : extra_object_roots) mark_id(id);
  while (!gray.empty()) {
    Object* o = objects_[gray.back()];
    gray.pop_back();
    switch (o->kind) {
      case ObjKind::kString: break;
      case ObjKind::kList:
        for (const Value& v : static_cast<ListObj*>(o)->items) mark_value(v);
        break;
      case ObjKind::kMap:
        for (const auto& e : static_cast<MapObj*>(o)->entries) mark_value(e.second);
        break;
      case ObjKind::kClosure:
        for (uint32_t id : static_cast<ClosureObj*>(o)->upvalues) mark_id(id);
        break;
      case ObjKind::kUpvalue: mark_value(static_cast<UpvalueObj*>(o)->closed); break;
      case ObjKind::kError: mark_value(static_cast<ErrorObj*>(o)->data); break;
      case ObjKind::kSecret: break;
      case ObjKind::kTask: {
        const auto* t = static_cast<TaskObj*>(o);
        mark_value(t->result);
        for (uint32_t i = 0; i < t->exec.sp; ++i) mark_value(t->exec.stack[i]);
        mark_value(t->exec.pending_error);
        for (const Frame& f : t->exec.frames)
          if (f.closure != kNoClosure) mark_id(f.closure);
        for (uint32_t id : t->exec.open_upvalues) mark_id(id);
        break;
      }
    }
  }
  bytes_ = 0;
  for (uint32_t id = 0; id < objects_.size(); ++id) {
    Object* o = objects_[id];
    if (!o) continue;
    if (o->marked) {
      o->marked = false;
      bytes_ += ObjectBytes(o);
    } else {
      if (o->persisted) freed_persisted_.push_back(id);
      if (o->kind == ObjKind::kList && static_cast<ListObj*>(o)->stored_chunks > 0)
        freed_chunks_.emplace_back(id, static_cast<ListObj*>(o)->stored_chunks);
      if (o->kind == ObjKind::kString && static_cast<StringObj*>(o)->unread && --unread_ == 0) string_source_.reset();
      delete o;
      objects_[id] = nullptr;
      free_ids_.push_back(id);
      --live_;
    }
  }
  // Forget dirty entries of objects that no longer exist, so the list stays bounded.
  size_t kept = 0;
  for (uint32_t id : dirty_ids_)
    if (objects_[id] && objects_[id]->dirty) dirty_ids_[kept++] = id;
  dirty_ids_.resize(kept);
  allocated_since_gc_ = 0;
  next_gc_ = std::max<size_t>(100'000, live_);
  SetCollectThreshold();
}

}  // namespace flow

namespace flow {

void Heap::TakeChanges(std::vector<uint32_t>* changed, std::vector<uint32_t>* freed,
                       std::vector<std::pair<uint32_t, uint32_t>>* freed_chunks) {
  changed->clear();
  freed->clear();
  // A freed list's chunks go even when its id is reused: the new object writes its own.
  freed_chunks->swap(freed_chunks_);
  freed_chunks_.clear();
  for (uint32_t id : dirty_ids_) {
    Object* o = objects_[id];
    if (!o || !o->dirty) continue;
    o->dirty = false;
    o->persisted = true;
    changed->push_back(id);
  }
  dirty_ids_.clear();
  // An id freed and then reused is written again, not deleted.
  for (uint32_t id : freed_persisted_)
    if (!objects_[id] || !objects_[id]->persisted) freed->push_back(id);
  freed_persisted_.clear();
}

std::vector<uint32_t> Heap::LiveIds() const {
  std::vector<uint32_t> ids;
  for (uint32_t id = 0; id < objects_.size(); ++id)
    if (objects_[id]) ids.push_back(id);
  return ids;
}

void Heap::ResetForRestore(size_t capacity) {
  for (Object* o : objects_) delete o;
  unread_ = 0;
  string_source_.reset();
  objects_.assign(capacity, nullptr);
  free_ids_.clear();
  dirty_ids_.clear();
  freed_persisted_.clear();
  freed_chunks_.clear();
  live_ = 0;
  bytes_ = 0;
}

void Heap::Place(uint32_t id, Object* obj) {
  if (objects_[id]) {
    if (objects_[id]->kind == ObjKind::kString && static_cast<StringObj*>(objects_[id])->unread) --unread_;
    bytes_ -= ObjectBytes(objects_[id]);
    delete objects_[id];
    --live_;
  }
  obj->persisted = true;
  ever_held_secret_ |= obj->kind == ObjKind::kSecret;
  objects_[id] = obj;
  ++live_;
  bytes_ += ObjectBytes(obj);
}

void Heap::PlaceUnreadString(uint32_t id) {
  auto* s = new StringObj("");
  s->unread = true;
  ++unread_;
  Place(id, s);
}

void Heap::ReadString(uint32_t id, StringObj* s) {
  s->unread = false;
  const size_t placed = s->text.capacity();  // counted when it was placed
  Status st = string_source_ ? string_source_->Read(id, &s->text)
                             : Status::Corruption(fmt::format("string {} of the heap has no source to be read from", id));
  if (--unread_ == 0) string_source_.reset();  // the run's database is no longer read
  if (!st.ok()) {
    s->text.clear();
    if (string_error_.ok()) string_error_ = std::move(st);
    return;
  }
  if (s->text.capacity() > placed) Grew(s->text.capacity() - placed);
}

void Heap::ReadAllStrings() {
  for (uint32_t id = 0; id < objects_.size() && unread_ > 0; ++id)
    if (objects_[id] && objects_[id]->kind == ObjKind::kString) TextOf(id);
}

void Heap::FinishRestore() {
  for (uint32_t id = static_cast<uint32_t>(objects_.size()); id-- > 0;)
    if (!objects_[id]) free_ids_.push_back(id);
  allocated_since_gc_ = 0;
  SetCollectThreshold();
}

}  // namespace flow
