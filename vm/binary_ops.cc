// The full semantics of the binary operators, for every operand type. The dispatch loop
// handles int/int fast paths inline and comes here for everything else.
#include <fmt/format.h>

#include <cmath>

#include "vm/base/floor_div.h"
#include "vm/value_ops.h"
#include "vm/vm.h"

namespace flow {

namespace {

// Floored remainder, as `%` defines it (FloorDiv, vm/base/floor_div.h, is `//`).
int64_t FloorMod(int64_t a, int64_t b) {
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
double FloatMod(double a, double b) {
  double r = std::fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

const char* Verb(Op op) {
  switch (op) {
    case Op::ADD: return "add";
    case Op::SUB: return "subtract";
    case Op::MUL: return "multiply";
    case Op::DIV: case Op::FLOORDIV: return "divide";
    case Op::MOD: return "take the remainder of";
    default: return "compare";
  }
}

const char* Symbol(Op op) {
  switch (op) {
    case Op::ADD: return "+";
    case Op::SUB: return "-";
    case Op::MUL: return "*";
    case Op::FLOORDIV: return "//";
    default: return "?";
  }
}

}  // namespace

bool VM::BinaryOp(Op op, Value a, Value b, Value* out) {
  auto type_error = [&] {
    return Raise("type", fmt::format("cannot {} {} and {}", Verb(op), TypeName(a.tag), TypeName(b.tag)));
  };
  switch (op) {
    case Op::ADD:
      if ((a.tag == Tag::kSecret && (b.tag == Tag::kString || b.tag == Tag::kSecret)) ||
          (b.tag == Tag::kSecret && a.tag == Tag::kString)) {
        const Value both[2] = {a, b};
        *out = JoinSecret(both, 2);
        return true;
      }
      if (a.tag == Tag::kString && b.tag == Tag::kString) {
        const std::string &x = heap_.StringOf(a), &y = heap_.StringOf(b);
        if (!AdmitBytes(x.size() + y.size())) return false;
        *out = heap_.NewString(x + y);
        return true;
      }
      if (a.tag == Tag::kList && b.tag == Tag::kList) {
        const auto& first = heap_.Get<ListObj>(a.ref)->items;
        const auto& more = heap_.Get<ListObj>(b.ref)->items;
        if (!AdmitBytes((first.size() + more.size()) * sizeof(Value))) return false;
        std::vector<Value> items = first;
        items.insert(items.end(), more.begin(), more.end());
        *out = heap_.NewList(std::move(items));
        return true;
      }
      [[fallthrough]];
    case Op::SUB:
    case Op::MUL: {
      if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
        int64_t r;
        bool overflow = op == Op::ADD   ? __builtin_add_overflow(a.i, b.i, &r)
                        : op == Op::SUB ? __builtin_sub_overflow(a.i, b.i, &r)
                                        : __builtin_mul_overflow(a.i, b.i, &r);
        if (overflow) return Raise("arith", fmt::format("integer overflow in {} {} {}", a.i, Symbol(op), b.i));
        *out = Value::Int(r);
        return true;
      }
      if (!a.IsNumber() || !b.IsNumber()) return type_error();
      double x = a.AsDouble(), y = b.AsDouble();
      *out = Value::Float(op == Op::ADD ? x + y : op == Op::SUB ? x - y : x * y);
      return true;
    }
    case Op::DIV:
      if (!a.IsNumber() || !b.IsNumber()) return type_error();
      if (b.AsDouble() == 0) return Raise("arith", "division by zero");
      *out = Value::Float(a.AsDouble() / b.AsDouble());
      return true;
    case Op::FLOORDIV:
      if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
        if (b.i == 0) return Raise("arith", "division by zero");
        if (b.i == -1 && a.i == INT64_MIN) return Raise("arith", fmt::format("integer overflow in {} // -1", a.i));
        *out = Value::Int(FloorDiv(a.i, b.i));
        return true;
      }
      if (!a.IsNumber() || !b.IsNumber()) return type_error();
      if (b.AsDouble() == 0) return Raise("arith", "division by zero");
      *out = Value::Float(std::floor(a.AsDouble() / b.AsDouble()));
      return true;
    case Op::MOD:
      if (a.tag == Tag::kInt && b.tag == Tag::kInt) {
        if (b.i == 0) return Raise("arith", "modulo by zero");
        *out = Value::Int(FloorMod(a.i, b.i));
        return true;
      }
      if (!a.IsNumber() || !b.IsNumber()) return type_error();
      if (b.AsDouble() == 0) return Raise("arith", "modulo by zero");
      *out = Value::Float(FloatMod(a.AsDouble(), b.AsDouble()));
      return true;
    case Op::EQ:
    case Op::NE: {
      bool too_deep;
      bool equal = ValuesEqual(heap_, a, b, &too_deep);
      if (too_deep) return Raise("type", "values nest too deeply to compare (or contain themselves)");
      *out = Value::Bool(equal == (op == Op::EQ));
      return true;
    }
    case Op::LT: case Op::LE: case Op::GT: case Op::GE: {
      int cmp;
      if (a.IsNumber() && b.IsNumber()) {
        cmp = CompareNumbers(a, b);
        if (cmp == kUnordered) {
          *out = Value::Bool(false);
          return true;
        }
      } else if (a.tag == Tag::kString && b.tag == Tag::kString) {
        int c = heap_.StringOf(a).compare(heap_.StringOf(b));
        cmp = c < 0 ? -1 : c > 0;
      } else {
        return type_error();
      }
      *out = Value::Bool(op == Op::LT ? cmp < 0 : op == Op::LE ? cmp <= 0 : op == Op::GT ? cmp > 0 : cmp >= 0);
      return true;
    }
    default: return Raise("fatal", "not a binary operator");
  }
}

}  // namespace flow
