// Methods of strings, lists and maps: `xs.push(v)`, `s.split(",")`, `m.keys()`.
#include <fmt/format.h>

#include "stdlib/stdlib.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

namespace {

bool WrongArgs(VM& vm, std::string_view type, std::string_view name, int want, int got) {
  return vm.Raise("type", fmt::format("{}.{}() takes {} argument{}, got {}", type, name, want, want == 1 ? "" : "s", got));
}

bool NeedString(VM& vm, Value v, std::string_view method) {
  if (v.tag == Tag::kString) return true;
  return vm.Raise("type", fmt::format("{}() takes a string, not {}", method, TypeName(v.tag)));
}

NativeResult StringMethod(VM& vm, const std::string& s, std::string_view name, Value* args, int argc, Value* out) {
  Heap& heap = vm.heap();
  auto arity = [&](int n) { return argc == n || WrongArgs(vm, "string", name, n, argc); };
  if (name == "upper" || name == "lower") {
    if (!arity(0)) return kRaised;
    std::string r = s;
    for (char& c : r) c = name == "upper" ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    *out = heap.NewString(std::move(r));
    return kDone;
  }
  if (name == "trim") {
    if (!arity(0)) return kRaised;
    size_t b = s.find_first_not_of(" \t\r\n\v\f");
    size_t e = s.find_last_not_of(" \t\r\n\v\f");
    *out = heap.NewString(b == std::string::npos ? "" : s.substr(b, e - b + 1));
    return kDone;
  }
  if (name == "split") {
    if (!arity(1) || !NeedString(vm, args[0], "split")) return kRaised;
    const std::string& sep = heap.StringOf(args[0]);
    std::vector<Value> parts;
    if (sep.empty()) {
      for (auto& c : SplitCodePoints(s)) parts.push_back(heap.NewString(std::move(c)));
    } else {
      size_t start = 0;
      for (size_t at; (at = s.find(sep, start)) != std::string::npos; start = at + sep.size())
        parts.push_back(heap.NewString(s.substr(start, at - start)));
      parts.push_back(heap.NewString(s.substr(start)));
    }
    *out = heap.NewList(std::move(parts));
    return kDone;
  }
  if (name == "contains" || name == "starts_with" || name == "ends_with") {
    if (!arity(1) || !NeedString(vm, args[0], name)) return kRaised;
    const std::string& x = heap.StringOf(args[0]);
    bool r = name == "contains" ? s.find(x) != std::string::npos
             : name == "starts_with" ? s.compare(0, x.size(), x) == 0
                                     : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
    *out = Value::Bool(r);
    return kDone;
  }
  if (name == "replace") {
    if (!arity(2) || !NeedString(vm, args[0], name) || !NeedString(vm, args[1], name)) return kRaised;
    const std::string& from = heap.StringOf(args[0]);
    const std::string& to = heap.StringOf(args[1]);
    if (from.empty()) {
      *out = heap.NewString(s);
      return kDone;
    }
    std::string r;
    size_t start = 0;
    for (size_t at; (at = s.find(from, start)) != std::string::npos; start = at + from.size()) {
      r.append(s, start, at - start);
      r += to;
    }
    r.append(s, start);
    *out = heap.NewString(std::move(r));
    return kDone;
  }
  if (name == "len") {
    if (!arity(0)) return kRaised;
    *out = Value::Int(Utf8Length(s));
    return kDone;
  }
  return Raise(vm, "type", fmt::format("string has no method `{}`", name));
}

NativeResult ListMethod(VM& vm, Value list, std::string_view name, Value* args, int argc, Value* out) {
  Heap& heap = vm.heap();
  const auto& items = heap.Get<ListObj>(list.ref)->items;
  auto arity = [&](int n) { return argc == n || WrongArgs(vm, "list", name, n, argc); };
  if (name == "push") {
    if (!arity(1)) return kRaised;
    // A full list doubles: that growth must fit the memory budget.
    if (items.size() == items.capacity() && !vm.AdmitBytes(items.capacity() * sizeof(Value))) return kRaised;
    heap.PushItem(list.ref, args[0]);
    *out = Value::Null();
    return kDone;
  }
  if (name == "pop") {
    if (!arity(0)) return kRaised;
    if (items.empty()) return Raise(vm, "index", "pop from an empty list");
    *out = heap.PopItem(list.ref);
    return kDone;
  }
  if (name == "join") {
    if (argc > 1) {
      WrongArgs(vm, "list", name, 1, argc);
      return kRaised;
    }
    if (argc == 1 && !NeedString(vm, args[0], "join")) return kRaised;
    std::string sep = argc == 1 ? heap.StringOf(args[0]) : "";
    std::string r, error;
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) r += sep;
      if (!ToDisplayString(heap, items[i], &r, &error)) return Raise(vm, "type", error);
    }
    *out = heap.NewString(std::move(r));
    return kDone;
  }
  if (name == "contains") {
    if (!arity(1)) return kRaised;
    bool found = false, too_deep = false;
    for (size_t i = 0; i < items.size() && !found; ++i) {
      found = ValuesEqual(heap, items[i], args[0], &too_deep);
      if (too_deep) return Raise(vm, "type", "values nest too deeply to compare (or contain themselves)");
    }
    *out = Value::Bool(found);
    return kDone;
  }
  if (name == "len") {
    if (!arity(0)) return kRaised;
    *out = Value::Int(static_cast<int64_t>(items.size()));
    return kDone;
  }
  return Raise(vm, "type", fmt::format("list has no method `{}`", name));
}

NativeResult MapMethod(VM& vm, Value map, std::string_view name, Value* args, int argc, Value* out) {
  Heap& heap = vm.heap();
  const MapObj* m = heap.Get<MapObj>(map.ref);
  auto arity = [&](int n) { return argc == n || WrongArgs(vm, "map", name, n, argc); };
  if (name == "keys" || name == "values") {
    if (!arity(0)) return kRaised;
    std::vector<Value> r;
    r.reserve(m->entries.size());
    for (const auto& [k, v] : m->entries) r.push_back(name == "keys" ? heap.NewString(k) : v);
    *out = heap.NewList(std::move(r));
    return kDone;
  }
  if (name == "has") {
    if (!arity(1) || !NeedString(vm, args[0], "has")) return kRaised;
    *out = Value::Bool(m->Find(heap.StringOf(args[0])) != nullptr);
    return kDone;
  }
  if (name == "get") {
    if (argc < 1 || argc > 2) {
      WrongArgs(vm, "map", name, 2, argc);
      return kRaised;
    }
    if (!NeedString(vm, args[0], "get")) return kRaised;
    const Value* v = m->Find(heap.StringOf(args[0]));
    *out = v ? *v : (argc == 2 ? args[1] : Value::Null());
    return kDone;
  }
  if (name == "len") {
    if (!arity(0)) return kRaised;
    *out = Value::Int(static_cast<int64_t>(m->entries.size()));
    return kDone;
  }
  if (name == "json") {  // an http response: its body, parsed
    if (!arity(0)) return kRaised;
    const Value* body = m->Find("body");
    if (!body || body->tag != Tag::kString) return Raise(vm, "type", "json() needs a map with a string `body` (an http response)");
    return ParseJson(vm, heap.StringOf(*body), out) ? kDone : kRaised;
  }
  return Raise(vm, "type", fmt::format("map has no method `{}`", name));
}

// t.cancel(): `cancelled` is raised in t at its next effect or wait. t.done(): has it finished?
NativeResult TaskMethod(VM& vm, Value task, std::string_view name, Value* args, int argc, Value* out) {
  if (name == "cancel" || name == "done") {
    if (argc != 0) {
      WrongArgs(vm, "task", name, 0, argc);
      return kRaised;
    }
    if (name == "cancel") {
      vm.CancelTask(task);
      *out = Value::Null();
    } else {
      *out = Value::Bool(vm.TaskFinished(task));
    }
    return kDone;
  }
  return Raise(vm, "type", fmt::format("task has no method `{}` (cancel, done)", name));
}

}  // namespace

NativeResult InvokeMethod(VM& vm, Value receiver, std::string_view name, Value* args, int argc, Value* out) {
  switch (receiver.tag) {
    case Tag::kString: return StringMethod(vm, vm.heap().StringOf(receiver), name, args, argc, out);
    case Tag::kList: return ListMethod(vm, receiver, name, args, argc, out);
    case Tag::kMap: return MapMethod(vm, receiver, name, args, argc, out);
    case Tag::kTask: return TaskMethod(vm, receiver, name, args, argc, out);
    default: return Raise(vm, "type", fmt::format("{} has no method `{}`", TypeName(receiver.tag), name));
  }
}

}  // namespace flow::stdlib
