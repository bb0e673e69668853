// The native methods of lists, maps and tasks (vm/bytecode/methods.def); strings' are in
// strings.cc. The VM has checked the argument count before it calls one. Every change to a
// list or map goes through the heap's editing calls, which mark it for the next checkpoint.
#include <fmt/format.h>

#include <algorithm>

#include "stdlib/methods.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

namespace {

const std::vector<Value>& Items(VM& vm, Value list) { return vm.heap().Get<ListObj>(list.ref)->items; }

// An index argument in [0, size] (insert) or [0, size) (remove_at); negative counts from the end.
bool IndexArg(VM& vm, Value v, size_t size, bool past_end_ok, std::string_view method, size_t* at) {
  if (v.tag != Tag::kInt) return vm.Raise("type", fmt::format("{}() takes an int index, not {}", method, TypeName(v.tag)));
  const int64_t n = static_cast<int64_t>(size);
  const int64_t i = v.i < 0 ? v.i + n : v.i;
  if (i < 0 || i > n || (i == n && !past_end_ok))
    return vm.Raise("index", fmt::format("{}() index {} out of range for a list of {}", method, v.i, size));
  *at = static_cast<size_t>(i);
  return true;
}

}  // namespace

// slice(a [, b]) of n items, as Python's: negative counts from the end, out of range clamps.
bool SliceBounds(VM& vm, Value* args, int argc, int64_t n, std::string_view method, int64_t* from, int64_t* to) {
  auto bound = [&](Value v, int64_t* out) {
    if (v.tag == Tag::kNull) return true;
    if (v.tag != Tag::kInt) return vm.Raise("type", fmt::format("{}() takes int bounds, not {}", method, TypeName(v.tag)));
    int64_t i = v.i < 0 ? (v.i < -n ? 0 : v.i + n) : std::min(v.i, n);
    *out = i;
    return true;
  };
  *from = 0, *to = n;
  if (!bound(args[0], from) || (argc > 1 && !bound(args[1], to))) return false;
  if (*to < *from) *to = *from;
  return true;
}

NativeResult ListPush(VM& vm, Value list, Value* args, int, Value* out) {
  const auto& items = Items(vm, list);
  // A full list doubles: that growth must fit the memory budget.
  if (items.size() == items.capacity() && !vm.AdmitBytes(items.capacity() * sizeof(Value))) return kRaised;
  vm.heap().PushItem(list.ref, args[0]);
  *out = Value::Null();
  return kDone;
}

NativeResult ListPop(VM& vm, Value list, Value*, int, Value* out) {
  if (Items(vm, list).empty()) return Raise(vm, "index", "pop from an empty list");
  *out = vm.heap().PopItem(list.ref);
  return kDone;
}

NativeResult ListJoin(VM& vm, Value list, Value* args, int argc, Value* out) {
  Heap& heap = vm.heap();
  if (argc == 1 && args[0].tag != Tag::kString)
    return Raise(vm, "type", fmt::format("join() takes a string, not {}", TypeName(args[0].tag)));
  std::string sep = argc == 1 ? heap.StringOf(args[0]) : "";
  const auto& items = Items(vm, list);
  std::string r, error;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) r += sep;
    if (!ToDisplayString(heap, items[i], &r, &error)) return Raise(vm, "type", error);
  }
  *out = heap.NewString(std::move(r));
  return kDone;
}

// The index of the first item equal to v, or -1.
bool FindItem(VM& vm, Value list, Value v, int64_t* index) {
  const auto& items = Items(vm, list);
  bool too_deep = false;
  for (size_t i = 0; i < items.size(); ++i) {
    if (ValuesEqual(vm.heap(), items[i], v, &too_deep)) {
      *index = static_cast<int64_t>(i);
      return true;
    }
    if (too_deep) return vm.Raise("type", "values nest too deeply to compare (or contain themselves)");
  }
  *index = -1;
  return true;
}

NativeResult ListContains(VM& vm, Value list, Value* args, int, Value* out) {
  int64_t i;
  if (!FindItem(vm, list, args[0], &i)) return kRaised;
  *out = Value::Bool(i >= 0);
  return kDone;
}

NativeResult ListIndexOf(VM& vm, Value list, Value* args, int, Value* out) {
  int64_t i;
  if (!FindItem(vm, list, args[0], &i)) return kRaised;
  *out = Value::Int(i);
  return kDone;
}

NativeResult ListLen(VM& vm, Value list, Value*, int, Value* out) {
  *out = Value::Int(static_cast<int64_t>(Items(vm, list).size()));
  return kDone;
}

NativeResult ListSlice(VM& vm, Value list, Value* args, int argc, Value* out) {
  const auto& items = Items(vm, list);
  int64_t from, to;
  if (!SliceBounds(vm, args, argc, static_cast<int64_t>(items.size()), "slice", &from, &to)) return kRaised;
  if (!vm.AdmitBytes(static_cast<uint64_t>(to - from) * sizeof(Value))) return kRaised;
  *out = vm.heap().NewList(std::vector<Value>(items.begin() + from, items.begin() + to));
  return kDone;
}

NativeResult ListInsert(VM& vm, Value list, Value* args, int, Value* out) {
  size_t at;
  if (!IndexArg(vm, args[0], Items(vm, list).size(), true, "insert", &at)) return kRaised;
  if (!vm.AdmitBytes(sizeof(Value))) return kRaised;
  auto& items = vm.heap().Mutable<ListObj>(list.ref)->items;
  items.insert(items.begin() + static_cast<std::ptrdiff_t>(at), args[1]);
  *out = Value::Null();
  return kDone;
}

NativeResult ListRemoveAt(VM& vm, Value list, Value* args, int, Value* out) {
  size_t at;
  if (!IndexArg(vm, args[0], Items(vm, list).size(), false, "remove_at", &at)) return kRaised;
  auto& items = vm.heap().Mutable<ListObj>(list.ref)->items;
  *out = items[at];
  items.erase(items.begin() + static_cast<std::ptrdiff_t>(at));
  return kDone;
}

NativeResult ListExtend(VM& vm, Value list, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kList) return Raise(vm, "type", fmt::format("extend() takes a list, not {}", TypeName(args[0].tag)));
  const std::vector<Value> more = Items(vm, args[0]);  // a copy: xs.extend(xs) doubles xs
  if (!vm.AdmitBytes(more.size() * sizeof(Value))) return kRaised;
  for (Value v : more) vm.heap().PushItem(list.ref, v);
  *out = Value::Null();
  return kDone;
}

NativeResult ListReverse(VM& vm, Value list, Value*, int, Value* out) {
  auto& items = vm.heap().Mutable<ListObj>(list.ref)->items;
  std::reverse(items.begin(), items.end());
  *out = Value::Null();
  return kDone;
}

// The order sort() puts values in: numbers by value, strings by code point, false before
// true, lists item by item. Other values, and two of different kinds, have none.
namespace {
bool CompareForSort(const Heap& heap, Value a, Value b, int depth, int* order, std::string* error) {
  if (depth > kMaxValueDepth) {
    *error = "values nest too deeply to sort (or contain themselves)";
    return false;
  }
  if (a.IsNumber() && b.IsNumber()) {
    int c = CompareNumbers(a, b);
    if (c == kUnordered) {
      *error = "cannot sort nan";
      return false;
    }
    *order = c;
    return true;
  }
  if (a.tag != b.tag) {
    *error = fmt::format("cannot sort {} and {} together (sort compares numbers, strings, bools or lists of them)",
                         TypeName(a.tag), TypeName(b.tag));
    return false;
  }
  switch (a.tag) {
    case Tag::kString: {
      int c = heap.StringOf(a).compare(heap.StringOf(b));
      *order = c < 0 ? -1 : c > 0;
      return true;
    }
    case Tag::kBool: *order = static_cast<int>(a.b) - static_cast<int>(b.b); return true;
    case Tag::kNull: *order = 0; return true;
    case Tag::kList: {
      const auto& x = heap.Get<ListObj>(a.ref)->items;
      const auto& y = heap.Get<ListObj>(b.ref)->items;
      for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
        if (!CompareForSort(heap, x[i], y[i], depth + 1, order, error)) return false;
        if (*order != 0) return true;
      }
      *order = x.size() < y.size() ? -1 : x.size() > y.size();
      return true;
    }
    default:
      *error = fmt::format("cannot sort {} values (sort compares numbers, strings, bools or lists of them)", TypeName(a.tag));
      return false;
  }
}
}  // namespace

// _sort([keys]): sorts in place, stable; by keys[i] for item i when keys are given (the
// list's sort(key) computes them in Flow, stdlib/methods.flow).
NativeResult ListSortByKeys(VM& vm, Value list, Value* args, int argc, Value* out) {
  Heap& heap = vm.heap();
  const bool keyed = argc == 1 && args[0].tag != Tag::kNull;
  const size_t n = Items(vm, list).size();
  if (keyed && (args[0].tag != Tag::kList || Items(vm, args[0]).size() != n))
    return Raise(vm, "fatal", "_sort() takes a list of one key per item");
  std::vector<Value> keys = keyed ? Items(vm, args[0]) : Items(vm, list);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::string error;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    int c = 0;
    if (!error.empty() || !CompareForSort(heap, keys[a], keys[b], 0, &c, &error)) return false;
    return c < 0;
  });
  if (!error.empty()) return Raise(vm, "type", error);
  auto& items = heap.Mutable<ListObj>(list.ref)->items;
  std::vector<Value> sorted(n);
  for (size_t i = 0; i < n; ++i) sorted[i] = items[order[i]];
  items = std::move(sorted);
  *out = Value::Null();
  return kDone;
}

NativeResult MapKeys(VM& vm, Value map, Value*, int, Value* out) {
  Heap& heap = vm.heap();
  std::vector<Value> r;
  for (const auto& [k, v] : heap.Get<MapObj>(map.ref)->entries) r.push_back(heap.NewString(k));
  *out = heap.NewList(std::move(r));
  return kDone;
}

NativeResult MapValues(VM& vm, Value map, Value*, int, Value* out) {
  Heap& heap = vm.heap();
  std::vector<Value> r;
  for (const auto& [k, v] : heap.Get<MapObj>(map.ref)->entries) r.push_back(v);
  *out = heap.NewList(std::move(r));
  return kDone;
}

// [[key, value], ...] in the map's order.
NativeResult MapItems(VM& vm, Value map, Value*, int, Value* out) {
  Heap& heap = vm.heap();
  std::vector<Value> r;
  for (size_t i = 0; i < heap.Get<MapObj>(map.ref)->entries.size(); ++i) {
    const auto& [k, v] = heap.Get<MapObj>(map.ref)->entries[i];
    Value key = heap.NewString(k);
    r.push_back(heap.NewList({key, v}));
  }
  *out = heap.NewList(std::move(r));
  return kDone;
}

bool KeyArg(VM& vm, Value v, std::string_view method) {
  return v.tag == Tag::kString || vm.Raise("type", fmt::format("{}() takes a string key, not {}", method, TypeName(v.tag)));
}

NativeResult MapHas(VM& vm, Value map, Value* args, int, Value* out) {
  if (!KeyArg(vm, args[0], "has")) return kRaised;
  *out = Value::Bool(vm.heap().Get<MapObj>(map.ref)->Find(vm.heap().StringOf(args[0])) != nullptr);
  return kDone;
}

NativeResult MapGet(VM& vm, Value map, Value* args, int argc, Value* out) {
  if (!KeyArg(vm, args[0], "get")) return kRaised;
  const Value* v = vm.heap().Get<MapObj>(map.ref)->Find(vm.heap().StringOf(args[0]));
  *out = v ? *v : (argc == 2 ? args[1] : Value::Null());
  return kDone;
}

NativeResult MapLen(VM& vm, Value map, Value*, int, Value* out) {
  *out = Value::Int(static_cast<int64_t>(vm.heap().Get<MapObj>(map.ref)->entries.size()));
  return kDone;
}

NativeResult MapJson(VM& vm, Value map, Value*, int, Value* out) {
  const Value* body = vm.heap().Get<MapObj>(map.ref)->Find("body");
  if (!body || body->tag != Tag::kString) return Raise(vm, "type", "json() needs a map with a string `body` (an http response)");
  return ParseJson(vm, vm.heap().StringOf(*body), out) ? kDone : kRaised;
}

// delete(key): removes the entry and returns its value (null if there was none); the
// others keep their order.
NativeResult MapDelete(VM& vm, Value map, Value* args, int, Value* out) {
  if (!KeyArg(vm, args[0], "delete")) return kRaised;
  const std::string key = vm.heap().StringOf(args[0]);
  if (!vm.heap().Get<MapObj>(map.ref)->Find(key)) {
    *out = Value::Null();
    return kDone;
  }
  MapObj* m = vm.heap().Mutable<MapObj>(map.ref);
  const uint32_t at = m->index.at(key);
  *out = m->entries[at].second;
  m->entries.erase(m->entries.begin() + at);
  m->index.erase(key);
  for (auto& [k, i] : m->index)
    if (i > at) --i;
  return kDone;
}

// merge(other): a new map, this one's entries then other's (other's value wins a key both have).
NativeResult MapMerge(VM& vm, Value map, Value* args, int, Value* out) {
  Heap& heap = vm.heap();
  if (args[0].tag != Tag::kMap) return Raise(vm, "type", fmt::format("merge() takes a map, not {}", TypeName(args[0].tag)));
  Value merged = heap.NewMap();
  for (Value from : {map, args[0]}) {
    const size_t n = heap.Get<MapObj>(from.ref)->entries.size();
    for (size_t i = 0; i < n; ++i) {
      const auto& [k, v] = heap.Get<MapObj>(from.ref)->entries[i];
      heap.SetEntry(merged.ref, k, v);
    }
  }
  *out = merged;
  return kDone;
}

// t.cancel(): `cancelled` is raised in t at its next effect or wait. t.done(): has it finished?
NativeResult TaskCancel(VM& vm, Value task, Value*, int, Value* out) {
  vm.CancelTask(task);
  *out = Value::Null();
  return kDone;
}

NativeResult TaskDone(VM& vm, Value task, Value*, int, Value* out) {
  *out = Value::Bool(vm.TaskFinished(task));
  return kDone;
}

}  // namespace flow::stdlib
