// The bytecode verifier: after it accepts a module, the VM may trust every operand, jump,
// constant index and stack slot without checking them again while it runs.
#include <fmt/format.h>

#include <vector>

#include "vm/bytecode/decode.h"
#include "vm/bytecode/module.h"

namespace flow {

namespace {

Status Fail(const Function& f, uint32_t pc, const std::string& what) {
  return Status::Corruption(fmt::format("invalid bytecode in function '{}' at pc {}: {}", f.name, pc, what));
}

Status VerifyFunction(const Module& m, const Function& f, std::vector<int>* depths) {
  const std::string_view code = f.code;
  if (code.empty()) return Fail(f, 0, "empty code");
  // Pass 1: instruction boundaries.
  std::vector<bool> is_start(code.size() + 1, false);
  for (uint32_t pc = 0; pc < code.size();) {
    Instruction ins;
    if (!DecodeInstruction(code, pc, &ins)) return Fail(f, pc, "unknown opcode or truncated operands");
    is_start[pc] = true;
    pc += ins.size;
  }
  // Pass 2: operands, and the stack depth along every path (it must agree where paths meet).
  std::vector<int>& depth_at = *depths;
  depth_at.assign(code.size(), -1);
  std::vector<uint32_t> work;
  const int entry_depth = f.arity + 1;
  if (static_cast<uint32_t>(entry_depth) > f.max_stack) return Fail(f, 0, "max_stack below the arity");
  depth_at[0] = entry_depth;
  work.push_back(0);
  auto flow_to = [&](uint32_t pc, uint32_t target, int depth) -> Status {
    if (target >= code.size() || !is_start[target]) return Fail(f, pc, fmt::format("jump to {} is not an instruction", target));
    if (depth_at[target] == -1) {
      depth_at[target] = depth;
      work.push_back(target);
    } else if (depth_at[target] != depth) {
      return Fail(f, pc, fmt::format("stack depth {} disagrees with {} at {}", depth, depth_at[target], target));
    }
    return Status::Ok();
  };
  while (!work.empty()) {
    uint32_t pc = work.back();
    work.pop_back();
    int depth = depth_at[pc];
    Instruction ins;
    DecodeInstruction(code, pc, &ins);
    const OpInfo& info = GetOpInfo(ins.op);
    auto slot_ok = [&](uint32_t slot, int extra) { return static_cast<int>(slot) + extra < depth; };
    for (int i = 0; i < ins.operand_count; ++i) {
      uint32_t v = ins.operands[i];
      switch (info.operands[i]) {
        case 'K': if (v >= m.constants.size()) return Fail(f, pc, "constant index out of range"); break;
        case 'N':
          if (v >= m.constants.size() || m.constants[v].kind != Constant::Kind::kString)
            return Fail(f, pc, "name is not a string constant");
          break;
        case 'G': if (v >= m.globals.size()) return Fail(f, pc, "global slot out of range"); break;
        case 'U': if (v >= f.upvalues.size()) return Fail(f, pc, "upvalue index out of range"); break;
        case 'F':
          if (v == 0 || v >= m.functions.size()) return Fail(f, pc, "function index out of range");
          break;
        case 'B': if (v >= static_cast<uint32_t>(kBuiltinCount)) return Fail(f, pc, "unknown builtin"); break;
        default: break;
      }
    }
    // Slots an instruction names must lie inside the frame as it is at that point.
    switch (ins.op) {
      case Op::GET_LOCAL: if (!slot_ok(ins.operands[0], 0)) return Fail(f, pc, "local slot outside the frame"); break;
      case Op::SET_LOCAL: if (!slot_ok(ins.operands[0], 1)) return Fail(f, pc, "local slot outside the frame"); break;
      case Op::CLOSE_FROM: if (static_cast<int>(ins.operands[0]) > depth) return Fail(f, pc, "slot outside the frame"); break;
      case Op::FOR_ITER:
        if (ins.operands[1] < 1 || ins.operands[1] > 2 || !slot_ok(ins.operands[0], 1 + ins.operands[1]))
          return Fail(f, pc, "loop slots outside the frame");
        break;
      case Op::RANGE_PREP: case Op::RANGE_LOOP:
        if (!slot_ok(ins.operands[0], 2)) return Fail(f, pc, "loop slots outside the frame");
        break;
      case Op::CALL_BUILTIN: {
        const BuiltinInfo& b = GetBuiltinInfo(static_cast<uint16_t>(ins.operands[0]));
        int argc = static_cast<int>(ins.operands[1]);
        if (argc < b.min_args || (b.max_args >= 0 && argc > b.max_args))
          return Fail(f, pc, fmt::format("wrong argument count for builtin {}", b.name));
        break;
      }
      case Op::CLOSURE: {
        const Function& inner = m.functions[ins.operands[0]];
        for (const auto& u : inner.upvalues) {
          if (u.from_parent_local ? !slot_ok(u.index, 0) : u.index >= f.upvalues.size())
            return Fail(f, pc, "closure captures a variable outside the frame");
        }
        break;
      }
      default: break;
    }
    StackEffect effect = GetStackEffect(ins.op, ins.operands);
    if (depth < effect.pops) return Fail(f, pc, "stack underflow");
    int after = depth - effect.pops + effect.pushes;
    if (static_cast<uint32_t>(std::max(after, depth)) > f.max_stack) return Fail(f, pc, "stack deeper than max_stack");
    uint32_t next = pc + ins.size;
    switch (ins.op) {
      case Op::JUMP: case Op::LOOP:
        if (Status s = flow_to(pc, ins.operands[0], after); !s.ok()) return s;
        continue;
      case Op::RETURN: case Op::THROW:
        continue;
      case Op::AND_JUMP: case Op::OR_JUMP:
        if (Status s = flow_to(pc, ins.operands[0], depth); !s.ok()) return s;
        break;
      case Op::TRY_BEGIN:
        if (static_cast<uint32_t>(depth + 1) > f.max_stack) return Fail(f, pc, "stack deeper than max_stack");
        if (Status s = flow_to(pc, ins.operands[0], depth + 1); !s.ok()) return s;
        break;
      case Op::FOR_ITER: case Op::RANGE_PREP: case Op::RANGE_LOOP: case Op::JUMP_IF_FALSE:
        if (Status s = flow_to(pc, ins.operands[ins.operand_count - 1], after); !s.ok()) return s;
        break;
      default: break;
    }
    if (next >= code.size()) return Fail(f, pc, "execution runs off the end of the code");
    if (Status s = flow_to(pc, next, after); !s.ok()) return s;
  }
  for (size_t i = 1; i < f.lines.size(); ++i)
    if (f.lines[i].pc < f.lines[i - 1].pc) return Fail(f, 0, "line table out of order");
  return Status::Ok();
}

}  // namespace

Status VerifyModule(const Module& m) {
  if (m.functions.empty()) return Status::Corruption("invalid bytecode: no functions");
  if (m.functions[0].arity != 0 || !m.functions[0].upvalues.empty())
    return Status::Corruption("invalid bytecode: the top-level function takes arguments or captures variables");
  if (m.globals.size() > 0xffff) return Status::Corruption("invalid bytecode: too many globals");
  std::vector<int> depths;
  for (const auto& f : m.functions) {
    if (Status s = VerifyFunction(m, f, &depths); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ComputeStackDepths(const Module& m, uint32_t function, std::vector<int>* depths) {
  if (function >= m.functions.size()) return Status::Corruption("no such function");
  return VerifyFunction(m, m.functions[function], depths);
}

}  // namespace flow
