#include "vm/bytecode/opcodes.h"

namespace flow {

namespace {

constexpr OpInfo kOpTable[] = {
#define OP(name, operands, pops, pushes, flags, meaning) {#name, operands, pops, pushes, flags, meaning},
#include "vm/bytecode/opcodes.def"
#undef OP
};

using enum EffectKind;
constexpr BuiltinInfo kBuiltinTable[] = {
#define BUILTIN(id, name, min_args, max_args, effect, ...) {name, min_args, max_args, effect, effect != kPure},
#include "vm/bytecode/builtins.def"
#undef BUILTIN
};

}  // namespace

const OpInfo& GetOpInfo(Op op) { return kOpTable[static_cast<int>(op)]; }

int OperandWidth(char kind) {
  switch (kind) {
    case 'A': return 1;
    case 'L': case 'G': case 'U': case 'C': case 'B': return 2;
    default: return 4;  // K J F N
  }
}

int InstructionSize(Op op) {
  int size = 1;
  for (char c : GetOpInfo(op).operands) size += OperandWidth(c);
  return size;
}

StackEffect GetStackEffect(Op op, const uint32_t* operands) {
  switch (op) {
    case Op::POPN: return {static_cast<int>(operands[0]), 0};
    case Op::CALL: return {static_cast<int>(operands[0]) + 1, 1};
    case Op::CALL_BUILTIN: return {static_cast<int>(operands[1]), 1};
    case Op::INVOKE: return {static_cast<int>(operands[1]) + 1, 1};
    case Op::BUILD_LIST: return {static_cast<int>(operands[0]), 1};
    case Op::BUILD_MAP: return {2 * static_cast<int>(operands[0]), 1};
    case Op::BUILD_STRING: return {static_cast<int>(operands[0]), 1};
    default: {
      const OpInfo& info = GetOpInfo(op);
      return {info.pops, info.pushes};
    }
  }
}

const BuiltinInfo& GetBuiltinInfo(uint16_t id) { return kBuiltinTable[id]; }

bool IsBuiltinField(int id) { return kBuiltinTable[id].name.starts_with("run."); }

int FindBuiltin(std::string_view name) {
  for (int i = 0; i < kBuiltinCount; ++i)
    if (kBuiltinTable[i].name == name) return i;
  return -1;
}

bool IsBuiltinModule(std::string_view module) {
  for (const auto& b : kBuiltinTable) {
    if (b.name.size() > module.size() && b.name.substr(0, module.size()) == module &&
        b.name[module.size()] == '.')
      return true;
  }
  return false;
}

}  // namespace flow
