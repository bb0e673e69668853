// The opcode and builtin tables, expanded from opcodes.def and builtins.def.
#pragma once
#include <cstdint>
#include <string_view>

namespace flow {

enum OpFlags : uint8_t { kThrows = 1, kJump = 2, kBackEdge = 4, kMayEffect = 8 };

enum class Op : uint8_t {
#define OP(name, operands, pops, pushes, flags, meaning) name,
#include "vm/bytecode/opcodes.def"
#undef OP
};

inline constexpr int kOpCount = 0
#define OP(name, operands, pops, pushes, flags, meaning) +1
#include "vm/bytecode/opcodes.def"
#undef OP
    ;

struct OpInfo {
  std::string_view name;
  std::string_view operands;  // one letter per operand, see opcodes.def
  int pops;                   // -1: depends on the operands
  int pushes;
  uint8_t flags;
  std::string_view meaning;
};

const OpInfo& GetOpInfo(Op op);
inline bool IsValidOp(uint8_t byte) { return byte < kOpCount; }

// The width in bytes of one operand letter, and of a whole instruction.
int OperandWidth(char kind);
int InstructionSize(Op op);

// Values popped and pushed by an instruction, given its decoded operands.
struct StackEffect {
  int pops;
  int pushes;
};
StackEffect GetStackEffect(Op op, const uint32_t* operands);

enum class Builtin : uint16_t {
#define BUILTIN(id, name, min_args, max_args, effect, ...) id,
#include "vm/bytecode/builtins.def"
#undef BUILTIN
};

inline constexpr int kBuiltinCount = 0
#define BUILTIN(id, name, min_args, max_args, effect, ...) +1
#include "vm/bytecode/builtins.def"
#undef BUILTIN
    ;

enum class EffectKind : uint8_t { kPure, kRead, kOutput, kExternal };

struct BuiltinInfo {
  std::string_view name;
  int min_args;
  int max_args;  // -1: any number
  EffectKind effect;
  bool effectful;  // effect != kPure: the VM checkpoints after each call
};

const BuiltinInfo& GetBuiltinInfo(uint16_t id);
// The id of the builtin spelled `name` ("print", "json.encode"), or -1.
int FindBuiltin(std::string_view name);
// True if `module` is the prefix of some builtin ("json" for "json.encode").
bool IsBuiltinModule(std::string_view module);
// True for the builtins read as fields, with no call: those of module `run` (`run.id`).
bool IsBuiltinField(int id);

}  // namespace flow
