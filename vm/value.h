// Values: 16 bytes, a tag and a payload. Heap values hold a handle (an id into the Heap),
// never a pointer, so that the whole VM state can be written out and read back as data.
#pragma once
#include <bit>
#include <cstdint>

namespace flow {

// The values are on disk (a checkpointed value starts with its tag; docs/checkpoint.md,
// "VM header"): do not change them; a new tag takes the next number.
enum class Tag : uint8_t {
  kNull = 0, kBool = 1, kInt = 2, kFloat = 3, kBuiltin = 4,          // immediate
  kString = 5, kList = 6, kMap = 7, kFunction = 8, kError = 9,       // on the heap
  kSecret = 10,  // on the heap: a string never written in plaintext
  kTask = 11,    // on the heap: a task of the run (spawn), its TaskObj
};

struct Value {
  Tag tag;
  union {
    bool b;
    int64_t i;
    double f;
    uint32_t ref;  // heap id, or builtin id for kBuiltin
  };

  Value() = default;
  // Copy the tag and the payload as two moves, never as one 16-byte move: the VM writes
  // them separately, and a wide load of two narrow stores stalls store forwarding.
  Value(const Value& o) noexcept : tag(o.tag) { i = o.i; }
  Value& operator=(const Value& o) noexcept {
    tag = o.tag;
    i = o.i;
    return *this;
  }

  static Value Null() { Value v; v.tag = Tag::kNull; v.i = 0; return v; }
  // Narrow payloads are written as the whole 8-byte word (little-endian: b and ref are its
  // low bytes): a byte store followed by a word load would stall store forwarding.
  static Value Bool(bool b) { Value v; v.tag = Tag::kBool; v.i = b ? 1 : 0; return v; }
  static Value Int(int64_t i) { Value v; v.tag = Tag::kInt; v.i = i; return v; }
  static Value Float(double f) { Value v; v.tag = Tag::kFloat; v.f = f; return v; }
  static Value Builtin(uint32_t id) { Value v; v.tag = Tag::kBuiltin; v.i = id; return v; }
  static Value Ref(Tag tag, uint32_t id) { Value v; v.tag = tag; v.i = id; return v; }

  bool IsHeap() const { return tag >= Tag::kString; }
  bool IsNumber() const { return tag == Tag::kInt || tag == Tag::kFloat; }
  bool Truthy() const { return !(tag == Tag::kNull || (tag == Tag::kBool && !b)); }
  double AsDouble() const { return tag == Tag::kInt ? static_cast<double>(i) : f; }
};

static_assert(sizeof(Value) == 16);
static_assert(std::endian::native == std::endian::little, "Value packs narrow payloads in the low bytes");

// The name `type()` returns: int float string null bool list map function error secret task.
const char* TypeName(Tag tag);

}  // namespace flow
