#include "vm/value_ops.h"

#include <fmt/format.h>

#include <cmath>

namespace flow {

std::string FormatFloat(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  std::string s = fmt::format("{}", f);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

namespace {

int CompareIntFloat(int64_t i, double d) {
  if (std::isnan(d)) return kUnordered;
  if (d >= 0x1p63) return -1;  // beyond every int64 (and +inf)
  if (d < -0x1p63) return 1;
  double whole = std::trunc(d);  // in [-2^63, 2^63): exact as an int64
  int64_t w = static_cast<int64_t>(whole);
  if (i != w) return i < w ? -1 : 1;
  return whole < d ? -1 : whole > d ? 1 : 0;  // the fraction decides
}

}  // namespace

int CompareNumbers(Value a, Value b) {
  if (a.tag == Tag::kInt && b.tag == Tag::kInt) return a.i < b.i ? -1 : a.i > b.i;
  if (a.tag == Tag::kInt) return CompareIntFloat(a.i, b.f);
  if (b.tag == Tag::kInt) {
    int c = CompareIntFloat(b.i, a.f);
    return c == kUnordered ? c : -c;
  }
  if (std::isnan(a.f) || std::isnan(b.f)) return kUnordered;
  return a.f < b.f ? -1 : a.f > b.f;
}

namespace {

bool EqualAt(const Heap& heap, Value a, Value b, int depth, bool* too_deep) {
  if (depth > kMaxValueDepth) {
    *too_deep = true;
    return false;
  }
  if (a.IsNumber() && b.IsNumber()) return CompareNumbers(a, b) == 0;
  if (a.tag != b.tag) return false;
  switch (a.tag) {
    case Tag::kNull: return true;
    case Tag::kBool: return a.b == b.b;
    case Tag::kBuiltin: return a.ref == b.ref;
    case Tag::kString: return a.ref == b.ref || heap.StringOf(a) == heap.StringOf(b);
    case Tag::kList: {
      if (a.ref == b.ref) return true;
      const auto& x = heap.Get<ListObj>(a.ref)->items;
      const auto& y = heap.Get<ListObj>(b.ref)->items;
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i)
        if (!EqualAt(heap, x[i], y[i], depth + 1, too_deep)) return false;
      return true;
    }
    case Tag::kMap: {
      if (a.ref == b.ref) return true;
      const MapObj* x = heap.Get<MapObj>(a.ref);
      const MapObj* y = heap.Get<MapObj>(b.ref);
      if (x->entries.size() != y->entries.size()) return false;
      for (const auto& [k, v] : x->entries) {
        const Value* other = y->Find(k);
        if (!other || !EqualAt(heap, v, *other, depth + 1, too_deep)) return false;
      }
      return true;
    }
    default: return a.ref == b.ref;  // functions and errors: by identity
  }
}

void EncodeString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default:
        if (c < 0x20)
          *out += fmt::format("\\u{:04x}", c);
        else
          out->push_back(static_cast<char>(c));
    }
  }
  out->push_back('"');
}

struct Encoder {
  const Heap& heap;
  bool lenient;
  std::string* out;
  std::string* error;
  bool reveal = false;  // secrets as their value (a request body), else masked

  bool Encode(Value v, int depth) {
    if (depth > kMaxValueDepth) {
      *error = "value nests too deeply to encode (or contains itself)";
      return false;
    }
    switch (v.tag) {
      case Tag::kNull: *out += "null"; return true;
      case Tag::kBool: *out += v.b ? "true" : "false"; return true;
      case Tag::kInt: *out += std::to_string(v.i); return true;
      case Tag::kFloat:
        if (!std::isfinite(v.f) && !lenient) {
          *error = "cannot encode a non-finite float as JSON";
          return false;
        }
        *out += FormatFloat(v.f);
        return true;
      case Tag::kString: EncodeString(heap.StringOf(v), out); return true;
      case Tag::kList: {
        out->push_back('[');
        const auto& items = heap.Get<ListObj>(v.ref)->items;
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out->push_back(',');
          if (!Encode(items[i], depth + 1)) return false;
        }
        out->push_back(']');
        return true;
      }
      case Tag::kMap: {
        out->push_back('{');
        bool first = true;
        for (const auto& [k, val] : heap.Get<MapObj>(v.ref)->entries) {
          if (!first) out->push_back(',');
          first = false;
          EncodeString(k, out);
          out->push_back(':');
          if (!Encode(val, depth + 1)) return false;
        }
        out->push_back('}');
        return true;
      }
      case Tag::kError: {
        const ErrorObj* e = heap.Get<ErrorObj>(v.ref);
        *out += "{\"kind\":";
        EncodeString(e->kind, out);
        *out += ",\"message\":";
        EncodeString(e->message, out);
        if (e->data.tag != Tag::kNull) {
          *out += ",\"data\":";
          if (!Encode(e->data, depth + 1)) return false;
        }
        out->push_back('}');
        return true;
      }
      case Tag::kSecret: {
        const SecretObj* secret = heap.Get<SecretObj>(v.ref);
        EncodeString(reveal ? secret->value : secret->Masked(), out);
        return true;
      }
      case Tag::kBuiltin: case Tag::kFunction:
        if (!lenient) {
          *error = "cannot encode a function as JSON";
          return false;
        }
        *out += "\"<fn>\"";
        return true;
      case Tag::kTask:
        if (!lenient) {
          *error = "cannot encode a task as JSON";
          return false;
        }
        *out += "\"<task>\"";
        return true;
    }
    return true;
  }
};

}  // namespace

bool ValuesEqual(const Heap& heap, Value a, Value b, bool* too_deep) {
  *too_deep = false;
  return EqualAt(heap, a, b, 0, too_deep);
}

bool RevealString(const Heap& heap, Value v, std::string* out, std::string* error) {
  if (v.tag == Tag::kSecret) {
    *out += heap.Get<SecretObj>(v.ref)->value;
    return true;
  }
  return ToDisplayString(heap, v, out, error);
}

bool EncodeJson(const Heap& heap, Value v, bool lenient, std::string* out, std::string* error) {
  Encoder enc{heap, lenient, out, error};
  return enc.Encode(v, 0);
}

bool EncodeJsonRevealed(const Heap& heap, Value v, std::string* out, std::string* error) {
  Encoder enc{heap, false, out, error, true};
  return enc.Encode(v, 0);
}

bool ToDisplayString(const Heap& heap, Value v, std::string* out, std::string* error) {
  if (v.tag == Tag::kString) {
    *out += heap.StringOf(v);
    return true;
  }
  if (v.tag == Tag::kSecret) {
    *out += heap.Get<SecretObj>(v.ref)->Masked();
    return true;
  }
  return EncodeJson(heap, v, true, out, error);
}

}  // namespace flow
