#include "vm/heap.h"

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
  }
  return "?";
}

Heap::~Heap() {
  for (Object* o : objects_) delete o;
}

uint32_t Heap::Add(Object* obj) {
  ++live_;
  ++allocated_since_gc_;
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
    }
  }
  for (uint32_t id = 0; id < objects_.size(); ++id) {
    Object* o = objects_[id];
    if (!o) continue;
    if (o->marked) {
      o->marked = false;
    } else {
      delete o;
      objects_[id] = nullptr;
      free_ids_.push_back(id);
      --live_;
    }
  }
  allocated_since_gc_ = 0;
  next_gc_ = std::max<size_t>(100'000, live_);
}

}  // namespace flow
