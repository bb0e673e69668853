// Decodes one instruction at a time, driven by the operand letters of opcodes.def.
#pragma once
#include <cstdint>
#include <string_view>

#include "vm/base/coding.h"
#include "vm/bytecode/opcodes.h"

namespace flow {

struct Instruction {
  Op op;
  uint32_t operands[3];
  int operand_count;
  uint32_t size;
};

// False if the bytes at pc are not a whole, known instruction.
inline bool DecodeInstruction(std::string_view code, uint32_t pc, Instruction* out) {
  if (pc >= code.size()) return false;
  uint8_t byte = static_cast<uint8_t>(code[pc]);
  if (!IsValidOp(byte)) return false;
  out->op = static_cast<Op>(byte);
  const OpInfo& info = GetOpInfo(out->op);
  uint32_t at = pc + 1;
  out->operand_count = 0;
  for (char kind : info.operands) {
    int width = OperandWidth(kind);
    if (at + width > code.size()) return false;
    const auto* p = reinterpret_cast<const uint8_t*>(code.data() + at);
    out->operands[out->operand_count++] = width == 1 ? p[0] : width == 2 ? DecodeFixed16(p) : DecodeFixed32(p);
    at += width;
  }
  out->size = at - pc;
  return true;
}

}  // namespace flow
