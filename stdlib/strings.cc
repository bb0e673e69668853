// The native methods of strings (vm/bytecode/methods.def). Positions and lengths count
// code points, as len() and s[i] do.
#include <fmt/args.h>
#include <fmt/format.h>

#include <cctype>

#include "stdlib/methods.h"
#include "vm/base/utf8.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

namespace {

const std::string& Text(VM& vm, Value s) { return vm.heap().StringOf(s); }

bool StringArg(VM& vm, Value v, std::string_view method) {
  return v.tag == Tag::kString || vm.Raise("type", fmt::format("{}() takes a string, not {}", method, TypeName(v.tag)));
}

// The byte offset of code point `index` (or the size, past the end).
size_t ByteOffset(const std::string& s, int64_t index) {
  size_t at = 0;
  for (int64_t seen = 0; at < s.size(); ++at) {
    if ((static_cast<unsigned char>(s[at]) & 0xC0) != 0x80 && seen++ == index) break;
  }
  return at;
}

NativeResult Made(VM& vm, std::string text, Value* out) {
  if (!vm.AdmitBytes(text.size())) return kRaised;
  *out = vm.heap().NewString(std::move(text));
  return kDone;
}

// The fields of a format string, checked before fmt sees it: no field takes its width or
// precision from an argument, and none is wider than this, so a format cannot ask for
// gigabytes.
constexpr int64_t kMaxFormatWidth = 100000;

bool CheckFormatFields(VM& vm, std::string_view f) {
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '{') continue;
    if (i + 1 < f.size() && f[i + 1] == '{') {
      ++i;
      continue;
    }
    size_t end = f.find('}', i);
    if (end == std::string_view::npos) break;  // fmt says what is wrong
    std::string_view field = f.substr(i + 1, end - i - 1);
    if (field.find('{') != std::string_view::npos)
      return vm.Raise("type", "format(): a width or precision from an argument ({:{}}) is not supported");
    int64_t number = 0;
    for (char c : field) {
      number = std::isdigit(static_cast<unsigned char>(c)) ? std::min<int64_t>(number * 10 + (c - '0'), kMaxFormatWidth + 1) : 0;
      if (number > kMaxFormatWidth) return vm.Raise("type", fmt::format("format(): a width or precision over {}", kMaxFormatWidth));
    }
    i = end;
  }
  return true;
}

}  // namespace

NativeResult StringUpper(VM& vm, Value s, Value*, int, Value* out) {
  std::string r = Text(vm, s);
  for (char& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  *out = vm.heap().NewString(std::move(r));
  return kDone;
}

NativeResult StringLower(VM& vm, Value s, Value*, int, Value* out) {
  std::string r = Text(vm, s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  *out = vm.heap().NewString(std::move(r));
  return kDone;
}

NativeResult StringTrim(VM& vm, Value s, Value*, int, Value* out) {
  const std::string& t = Text(vm, s);
  size_t b = t.find_first_not_of(" \t\r\n\v\f");
  size_t e = t.find_last_not_of(" \t\r\n\v\f");
  *out = vm.heap().NewString(b == std::string::npos ? "" : t.substr(b, e - b + 1));
  return kDone;
}

NativeResult StringSplit(VM& vm, Value s, Value* args, int, Value* out) {
  if (!StringArg(vm, args[0], "split")) return kRaised;
  Heap& heap = vm.heap();
  const std::string& t = Text(vm, s);
  const std::string& sep = heap.StringOf(args[0]);
  std::vector<Value> parts;
  if (sep.empty()) {
    for (auto& c : SplitCodePoints(t)) parts.push_back(heap.NewString(std::move(c)));
  } else {
    size_t start = 0;
    for (size_t at; (at = t.find(sep, start)) != std::string::npos; start = at + sep.size())
      parts.push_back(heap.NewString(t.substr(start, at - start)));
    parts.push_back(heap.NewString(t.substr(start)));
  }
  *out = heap.NewList(std::move(parts));
  return kDone;
}

NativeResult StringContains(VM& vm, Value s, Value* args, int, Value* out) {
  if (!StringArg(vm, args[0], "contains")) return kRaised;
  *out = Value::Bool(Text(vm, s).find(Text(vm, args[0])) != std::string::npos);
  return kDone;
}

NativeResult StringStartsWith(VM& vm, Value s, Value* args, int, Value* out) {
  if (!StringArg(vm, args[0], "starts_with")) return kRaised;
  *out = Value::Bool(Text(vm, s).starts_with(Text(vm, args[0])));
  return kDone;
}

NativeResult StringEndsWith(VM& vm, Value s, Value* args, int, Value* out) {
  if (!StringArg(vm, args[0], "ends_with")) return kRaised;
  *out = Value::Bool(Text(vm, s).ends_with(Text(vm, args[0])));
  return kDone;
}

NativeResult StringReplace(VM& vm, Value s, Value* args, int, Value* out) {
  if (!StringArg(vm, args[0], "replace") || !StringArg(vm, args[1], "replace")) return kRaised;
  const std::string& t = Text(vm, s);
  const std::string& from = Text(vm, args[0]);
  const std::string& to = Text(vm, args[1]);
  if (from.empty()) {
    *out = s;
    return kDone;
  }
  std::string r;
  size_t start = 0;
  for (size_t at; (at = t.find(from, start)) != std::string::npos; start = at + from.size()) {
    r.append(t, start, at - start);
    r += to;
  }
  r.append(t, start);
  return Made(vm, std::move(r), out);
}

NativeResult StringLen(VM& vm, Value s, Value*, int, Value* out) {
  *out = Value::Int(Utf8Length(Text(vm, s)));
  return kDone;
}

// "{} has {:>5} items".format(a, b): fmt's syntax (as Python's str.format): `{}` or `{0}`
// for an argument, then `:` and a spec: fill and alignment (<, >, ^), sign, width,
// `.precision`, type (d x o b e f g s). Ints, floats, bools and strings format as
// themselves, other values as print shows them.
NativeResult StringFormat(VM& vm, Value s, Value* args, int argc, Value* out) {
  const std::string& f = Text(vm, s);
  if (!CheckFormatFields(vm, f)) return kRaised;
  fmt::dynamic_format_arg_store<fmt::format_context> store;
  for (int i = 0; i < argc; ++i) {
    Value v = args[i];
    switch (v.tag) {
      case Tag::kInt: store.push_back(v.i); break;
      case Tag::kFloat: store.push_back(v.f); break;
      case Tag::kBool: store.push_back(v.b); break;
      case Tag::kString: store.push_back(Text(vm, v)); break;
      default: {
        std::string shown, error;
        if (!ToDisplayString(vm.heap(), v, &shown, &error)) return Raise(vm, "type", error);
        store.push_back(std::move(shown));
      }
    }
  }
  std::string r;
  try {
    r = fmt::vformat(f, store);
  } catch (const fmt::format_error& e) {
    return Raise(vm, "type", fmt::format("format(): {} in \"{}\"", e.what(), f.size() > 80 ? f.substr(0, 77) + "..." : f));
  }
  return Made(vm, std::move(r), out);
}

namespace {
// pad_start / pad_end: `fill` repeated (and cut) before or after s, up to `width` code points.
NativeResult Pad(VM& vm, Value s, Value* args, int argc, bool at_start, std::string_view method, Value* out) {
  if (args[0].tag != Tag::kInt) return Raise(vm, "type", fmt::format("{}() takes an int width, not {}", method, TypeName(args[0].tag)));
  if (argc == 2 && !StringArg(vm, args[1], method)) return kRaised;
  const std::string fill = argc == 2 ? Text(vm, args[1]) : " ";
  const std::string& t = Text(vm, s);
  const int64_t have = Utf8Length(t);
  if (args[0].i <= have || fill.empty()) {
    *out = s;
    return kDone;
  }
  const int64_t need = args[0].i - have;
  if (!vm.AdmitBytes(static_cast<uint64_t>(need) * 4)) return kRaised;
  const std::vector<std::string> fill_points = SplitCodePoints(fill);
  std::string pad;
  for (int64_t i = 0; i < need; ++i) pad += fill_points[static_cast<size_t>(i) % fill_points.size()];
  return Made(vm, at_start ? pad + t : t + pad, out);
}
}  // namespace

NativeResult StringPadStart(VM& vm, Value s, Value* args, int argc, Value* out) { return Pad(vm, s, args, argc, true, "pad_start", out); }
NativeResult StringPadEnd(VM& vm, Value s, Value* args, int argc, Value* out) { return Pad(vm, s, args, argc, false, "pad_end", out); }

NativeResult StringRepeat(VM& vm, Value s, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kInt || args[0].i < 0)
    return Raise(vm, "type", fmt::format("repeat() takes an int >= 0, not {}", args[0].tag == Tag::kInt ? std::to_string(args[0].i) : std::string(TypeName(args[0].tag))));
  const std::string& t = Text(vm, s);
  if (!t.empty() && static_cast<uint64_t>(args[0].i) > (uint64_t{1} << 40) / t.size())
    return Raise(vm, "budget", "repeat() would build a string over 1 TiB");
  if (!vm.AdmitBytes(t.size() * static_cast<uint64_t>(args[0].i))) return kRaised;
  std::string r;
  r.reserve(t.size() * static_cast<size_t>(args[0].i));
  for (int64_t i = 0; i < args[0].i; ++i) r += t;
  *out = vm.heap().NewString(std::move(r));
  return kDone;
}

// The code-point index of the first occurrence of sub, or -1.
NativeResult StringIndexOf(VM& vm, Value s, Value* args, int, Value* out) {
  if (!StringArg(vm, args[0], "index_of")) return kRaised;
  const std::string& t = Text(vm, s);
  size_t at = t.find(Text(vm, args[0]));
  *out = Value::Int(at == std::string::npos ? -1 : Utf8Length(std::string_view(t).substr(0, at)));
  return kDone;
}

NativeResult StringSlice(VM& vm, Value s, Value* args, int argc, Value* out) {
  const std::string& t = Text(vm, s);
  int64_t from, to;
  if (!SliceBounds(vm, args, argc, Utf8Length(t), "slice", &from, &to)) return kRaised;
  size_t b = ByteOffset(t, from);
  size_t e = ByteOffset(t, to);
  *out = vm.heap().NewString(t.substr(b, e - b));
  return kDone;
}

// The lines, without their "\n" or "\r\n"; a last line needs no newline, and a final
// newline does not start another line.
NativeResult StringLines(VM& vm, Value s, Value*, int, Value* out) {
  Heap& heap = vm.heap();
  const std::string& t = Text(vm, s);  // a heap object stays where it is as others are made
  std::vector<Value> lines;
  size_t start = 0;
  while (start < t.size()) {
    size_t nl = t.find('\n', start);
    size_t end = nl == std::string::npos ? t.size() : nl;
    size_t cut = end > start && t[end - 1] == '\r' ? end - 1 : end;
    lines.push_back(heap.NewString(t.substr(start, cut - start)));
    start = nl == std::string::npos ? t.size() : nl + 1;
  }
  *out = heap.NewList(std::move(lines));
  return kDone;
}

}  // namespace flow::stdlib
