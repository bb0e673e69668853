// The parts of instructions that are not on the hot path: indexing beyond list[int],
// fields, literals of maps and strings, iteration set-up. Kept out of the dispatch loop so
// that the loop stays small enough for the compiler to keep its state in registers.
#include <fmt/format.h>

#include "vm/base/utf8.h"
#include "vm/value_ops.h"
#include "vm/vm.h"

namespace flow {

namespace {

bool ResolveIndex(int64_t index, size_t size, int64_t* out) {
  int64_t i = index < 0 ? index + static_cast<int64_t>(size) : index;
  *out = i;
  return i >= 0 && i < static_cast<int64_t>(size);
}

}  // namespace

bool VM::GetIndex(Value container, Value index, Value* out) {
  int64_t i;
  switch (container.tag) {
    case Tag::kList: {
      if (index.tag != Tag::kInt) return Raise("type", fmt::format("list index must be an int, not {}", TypeName(index.tag)));
      const auto& items = heap_.Get<ListObj>(container.ref)->items;
      if (!ResolveIndex(index.i, items.size(), &i))
        return Raise("index", fmt::format("list index {} out of range (length {})", index.i, items.size()));
      *out = items[i];
      return true;
    }
    case Tag::kMap: {
      if (index.tag != Tag::kString) return Raise("type", fmt::format("map key must be a string, not {}", TypeName(index.tag)));
      const Value* v = heap_.Get<MapObj>(container.ref)->Find(heap_.StringOf(index));
      *out = v ? *v : Value::Null();
      return true;
    }
    case Tag::kString: {
      if (index.tag != Tag::kInt) return Raise("type", fmt::format("string index must be an int, not {}", TypeName(index.tag)));
      std::vector<std::string> chars = SplitCodePoints(heap_.StringOf(container));
      if (!ResolveIndex(index.i, chars.size(), &i))
        return Raise("index", fmt::format("string index {} out of range (length {})", index.i, chars.size()));
      *out = heap_.NewString(chars[i]);
      return true;
    }
    default: return Raise("type", fmt::format("cannot index {}", TypeName(container.tag)));
  }
}

bool VM::SetIndex(Value container, Value index, Value value) {
  if (container.tag == Tag::kList) {
    if (index.tag != Tag::kInt) return Raise("type", fmt::format("list index must be an int, not {}", TypeName(index.tag)));
    size_t size = heap_.Get<ListObj>(container.ref)->items.size();
    int64_t i;
    if (!ResolveIndex(index.i, size, &i))
      return Raise("index", fmt::format("list index {} out of range (length {})", index.i, size));
    heap_.SetItem(container.ref, i, value);
    return true;
  }
  if (container.tag == Tag::kMap) {
    if (index.tag != Tag::kString) return Raise("type", fmt::format("map key must be a string, not {}", TypeName(index.tag)));
    heap_.SetEntry(container.ref, heap_.StringOf(index), value);
    return true;
  }
  return Raise("type", fmt::format("cannot assign into an element of {}", TypeName(container.tag)));
}

bool VM::GetField(Value object, const std::string& name, Value* out) {
  if (object.tag == Tag::kMap) {
    const Value* v = heap_.Get<MapObj>(object.ref)->Find(name);
    *out = v ? *v : Value::Null();
    return true;
  }
  if (object.tag == Tag::kError) {
    const ErrorObj* e = heap_.Get<ErrorObj>(object.ref);
    if (name == "kind") *out = heap_.NewString(e->kind);
    else if (name == "message") *out = heap_.NewString(e->message);
    else if (name == "data") *out = e->data;
    else return Raise("type", fmt::format("an error has no field `{}` (it has kind, message and data)", name));
    return true;
  }
  return Raise("type", fmt::format("cannot read field `{}` of {}", name, TypeName(object.tag)));
}

bool VM::SetField(Value object, const std::string& name, Value value) {
  if (object.tag != Tag::kMap) return Raise("type", fmt::format("cannot set field `{}` of {}", name, TypeName(object.tag)));
  heap_.SetEntry(object.ref, name, value);
  return true;
}

bool VM::BuildMap(const Value* pairs, int n, Value* out) {
  Value map = heap_.NewMap();
  MapObj* m = heap_.Mutable<MapObj>(map.ref);
  for (int i = 0; i < n; ++i) {
    if (pairs[2 * i].tag != Tag::kString)
      return Raise("type", fmt::format("map keys must be strings, not {}", TypeName(pairs[2 * i].tag)));
    m->Set(heap_.StringOf(pairs[2 * i]), pairs[2 * i + 1]);
  }
  *out = map;
  return true;
}

// Concatenation of values of which some are secrets: a secret of all the pieces.
Value VM::JoinSecret(const Value* parts, int n) {
  uint32_t id = heap_.Make<SecretObj>();
  SecretObj* joined = heap_.Mutable<SecretObj>(id);
  for (int i = 0; i < n; ++i) {
    Value v = parts[i];
    if (v.tag == Tag::kSecret) {
      const SecretObj* s = heap_.Get<SecretObj>(v.ref);
      joined->parts.insert(joined->parts.end(), s->parts.begin(), s->parts.end());
      joined->value += s->value;
    } else {
      std::string text, error;
      ToDisplayString(heap_, v, &text, &error);
      joined->parts.push_back({false, text});
      joined->value += text;
    }
  }
  return Value::Ref(Tag::kSecret, id);
}

bool VM::BuildString(const Value* parts, int n, Value* out) {
  for (int i = 0; i < n; ++i) {
    if (parts[i].tag == Tag::kSecret) {
      *out = JoinSecret(parts, n);
      return true;
    }
  }
  std::string text, error;
  for (int i = 0; i < n; ++i)
    if (!ToDisplayString(heap_, parts[i], &text, &error)) return Raise("type", error);
  if (!AdmitBytes(text.size())) return false;
  *out = heap_.NewString(std::move(text));
  return true;
}

bool VM::IterPrep(Value* sequence) {
  if (sequence->tag == Tag::kString) {
    std::vector<Value> chars;
    for (auto& c : SplitCodePoints(heap_.StringOf(*sequence))) chars.push_back(heap_.NewString(std::move(c)));
    *sequence = heap_.NewList(std::move(chars));
    return true;
  }
  if (sequence->tag == Tag::kList || sequence->tag == Tag::kMap) return true;
  return Raise("type", fmt::format("cannot iterate over {}", TypeName(sequence->tag)));
}

bool VM::MapIterNext(Value* slots, int vars) {
  const MapObj* m = heap_.Get<MapObj>(slots[0].ref);
  int64_t i = slots[1].i;
  if (i >= static_cast<int64_t>(m->entries.size())) return false;
  Value value = m->entries[i].second;
  slots[2] = heap_.NewString(m->entries[i].first);
  if (vars == 2) slots[3] = value;
  slots[1].i = i + 1;
  return true;
}

bool VM::Negate(Value a, Value* out) {
  if (a.tag == Tag::kInt) {
    if (a.i == INT64_MIN) return Raise("arith", fmt::format("integer overflow in -({})", a.i));
    *out = Value::Int(-a.i);
    return true;
  }
  if (a.tag == Tag::kFloat) {
    *out = Value::Float(-a.f);
    return true;
  }
  return Raise("type", fmt::format("cannot negate {}", TypeName(a.tag)));
}

bool VM::ThrowValue(Value v) {
  if (v.tag != Tag::kError)
    return Raise("type", fmt::format("throw takes an error value (made by error(kind, message)), not {}", TypeName(v.tag)));
  task_.pending_error = v;
  return false;
}

}  // namespace flow
