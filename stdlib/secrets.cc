#include "stdlib/secrets.h"

#include <fmt/format.h>

#include <algorithm>

#include "vm/value_ops.h"

namespace flow::stdlib {

SecretScrubber::SecretScrubber(const Heap& heap, VmHost& host) {
  if (!heap.ever_held_secret()) return;  // nothing to look for: no scan of the heap
  auto add = [&](const std::string& v) {
    if (v.size() >= kMinLength && std::find(values_.begin(), values_.end(), v) == values_.end()) values_.push_back(v);
  };
  for (uint32_t id = 0; id < heap.capacity(); ++id) {
    const Object* o = heap.GetObject(id);
    if (!o || o->kind != ObjKind::kSecret) continue;
    const auto* secret = static_cast<const SecretObj*>(o);
    std::string v;
    for (const auto& part : secret->parts)
      if (part.is_env && host.EnvironmentValue(part.text, &v)) add(v);
  }
  std::sort(values_.begin(), values_.end(), [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string SecretScrubber::Scrub(std::string text) const {
  for (const std::string& v : values_)
    for (size_t at = text.find(v); at != std::string::npos; at = text.find(v, at + 3)) text.replace(at, v.size(), "***");
  return text;
}

void SecretScrubber::ScrubValue(Heap& heap, Value v) const {
  if (values_.empty()) return;
  switch (v.tag) {
    case Tag::kString: {
      const std::string& text = heap.StringOf(v);
      bool found = std::any_of(values_.begin(), values_.end(), [&](const std::string& s) { return text.find(s) != std::string::npos; });
      if (found) heap.Mutable<StringObj>(v.ref)->text = Scrub(text);
      return;
    }
    case Tag::kList:
      for (Value item : heap.Get<ListObj>(v.ref)->items) ScrubValue(heap, item);
      return;
    case Tag::kMap:
      for (const auto& [k, item] : heap.Get<MapObj>(v.ref)->entries) ScrubValue(heap, item);
      return;
    default: return;
  }
}

bool WireString(const Heap& heap, Value v, const std::string& what, std::string* out, std::string* error) {
  out->clear();
  if (!RevealString(heap, v, out, error)) return false;
  if (out->find('\0') == std::string::npos) return true;
  *error = fmt::format("{} contains a NUL byte", what);
  return false;
}

}  // namespace flow::stdlib
