// The bytecode verifier: after it accepts a module, the VM may trust every operand, jump,
// constant index and stack slot without checking them again while it runs.
#include <fmt/format.h>

#include <map>
#include <tuple>
#include <vector>

#include "vm/bytecode/decode.h"
#include "vm/bytecode/module.h"

namespace flow {

namespace {

Status Fail(const Function& f, uint32_t pc, const std::string& what) {
  return Status::Corruption(fmt::format("invalid bytecode in function '{}' at pc {}: {}", f.name, pc, what));
}

// The handlers open in a frame at some point of its code (try, step, retry, timeout,
// breaker, limit), innermost last, each with the stack depth it was opened at. Stacks are
// interned as a tree of nodes, so that one int per instruction names one and two paths
// agree exactly when their ids are equal.
class HandlerStacks {
 public:
  static constexpr int kEmpty = -1;
  struct Node {
    int parent;
    Op begin;   // the opcode that opened it
    int depth;  // the stack depth when it was opened: code inside may not pop below it
  };

  int Push(int parent, Op begin, int depth) {
    auto [it, inserted] = ids_.try_emplace(std::make_tuple(parent, begin, depth), static_cast<int>(nodes_.size()));
    if (inserted) nodes_.push_back({parent, begin, depth});
    return it->second;
  }
  const Node& operator[](int id) const { return nodes_[id]; }

 private:
  std::vector<Node> nodes_;
  std::map<std::tuple<int, Op, int>, int> ids_;
};

// The *_BEGIN opcode that an *_END opcode closes, or NOP if `op` closes nothing.
Op BeginOf(Op op) {
  switch (op) {
    case Op::STEP_END: return Op::STEP_BEGIN;
    case Op::RETRY_END: return Op::RETRY_BEGIN;
    case Op::TIMEOUT_END: return Op::TIMEOUT_BEGIN;
    case Op::BREAKER_END: return Op::BREAKER_BEGIN;
    case Op::LIMIT_END: return Op::LIMIT_BEGIN;
    default: return Op::NOP;
  }
}

// The handlers open after `ins` runs and does not jump (`at` is the stack before it,
// `depth` the value stack before it), or an error: an END must close the innermost
// handler, of its own kind, with the block's value just above the depth it opened at,
// and POP_HANDLER needs an open handler. Without this, a stray END would make the VM pop
// a handler that is not there.
Status HandlersAfter(const Function& f, uint32_t pc, const Instruction& ins, int at, int depth, HandlerStacks* stacks,
                     int* after) {
  *after = at;
  switch (ins.op) {
    case Op::TRY_BEGIN: case Op::STEP_BEGIN: case Op::RETRY_BEGIN: case Op::TIMEOUT_BEGIN: case Op::BREAKER_BEGIN:
    case Op::LIMIT_BEGIN:
      *after = stacks->Push(at, ins.op, depth);
      return Status::Ok();
    case Op::POP_HANDLER:
      if (at == HandlerStacks::kEmpty) return Fail(f, pc, "POP_HANDLER with no open handler");
      *after = (*stacks)[at].parent;
      return Status::Ok();
    default: break;
  }
  Op begin = BeginOf(ins.op);
  if (begin == Op::NOP) return Status::Ok();
  if (at == HandlerStacks::kEmpty || (*stacks)[at].begin != begin)
    return Fail(f, pc, fmt::format("{} does not close the innermost open handler", GetOpInfo(ins.op).name));
  if (depth != (*stacks)[at].depth + 1) return Fail(f, pc, fmt::format("{} at the wrong stack depth", GetOpInfo(ins.op).name));
  *after = (*stacks)[at].parent;
  return Status::Ok();
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
  // Pass 2: operands, and the stack depth and the open handlers along every path (each
  // must agree where paths meet).
  std::vector<int>& depth_at = *depths;
  depth_at.assign(code.size(), -1);
  HandlerStacks stacks;
  std::vector<int> handlers_at(code.size(), HandlerStacks::kEmpty);
  std::vector<uint32_t> work;
  const int entry_depth = f.arity + 1;
  if (static_cast<uint32_t>(entry_depth) > f.max_stack) return Fail(f, 0, "max_stack below the arity");
  depth_at[0] = entry_depth;
  work.push_back(0);
  auto flow_to = [&](uint32_t pc, uint32_t target, int depth, int handlers) -> Status {
    if (target >= code.size() || !is_start[target]) return Fail(f, pc, fmt::format("jump to {} is not an instruction", target));
    if (depth_at[target] == -1) {
      depth_at[target] = depth;
      handlers_at[target] = handlers;
      work.push_back(target);
    } else if (depth_at[target] != depth) {
      return Fail(f, pc, fmt::format("stack depth {} disagrees with {} at {}", depth, depth_at[target], target));
    } else if (handlers_at[target] != handlers) {
      return Fail(f, pc, fmt::format("the handlers open disagree with another path at {}", target));
    }
    return Status::Ok();
  };
  while (!work.empty()) {
    uint32_t pc = work.back();
    work.pop_back();
    int depth = depth_at[pc];
    int handlers = handlers_at[pc];
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
      case Op::GET_LOCAL2:
        if (!slot_ok(ins.operands[0], 0) || !slot_ok(ins.operands[1], 0)) return Fail(f, pc, "local slot outside the frame");
        break;
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
    int handlers_after;
    if (Status s = HandlersAfter(f, pc, ins, handlers, depth, &stacks, &handlers_after); !s.ok()) return s;
    // A handler restores the stack to where it was opened: code inside may not pop below.
    if (handlers_after != HandlerStacks::kEmpty && after < stacks[handlers_after].depth && ins.op != Op::RETURN &&
        ins.op != Op::THROW)
      return Fail(f, pc, "pops below the stack of an open handler");
    uint32_t next = pc + ins.size;
    switch (ins.op) {
      case Op::JUMP: case Op::LOOP:
        if (Status s = flow_to(pc, ins.operands[0], after, handlers_after); !s.ok()) return s;
        continue;
      case Op::RETURN: case Op::THROW:
        continue;
      case Op::AND_JUMP: case Op::OR_JUMP: case Op::NONNULL_JUMP:
        if (Status s = flow_to(pc, ins.operands[0], depth, handlers_after); !s.ok()) return s;
        break;
      case Op::TRY_BEGIN:
        // The catch block: the handler is gone and the error is pushed.
        if (static_cast<uint32_t>(depth + 1) > f.max_stack) return Fail(f, pc, "stack deeper than max_stack");
        if (Status s = flow_to(pc, ins.operands[0], depth + 1, handlers); !s.ok()) return s;
        break;
      case Op::STEP_BEGIN:
        // A step already done: its value replaces the key and the body is skipped.
        if (Status s = flow_to(pc, ins.operands[ins.operand_count - 1], after, handlers); !s.ok()) return s;
        break;
      case Op::FOR_ITER: case Op::RANGE_PREP: case Op::RANGE_LOOP: case Op::JUMP_IF_FALSE:
        if (Status s = flow_to(pc, ins.operands[ins.operand_count - 1], after, handlers_after); !s.ok()) return s;
        break;
      default: break;
    }
    if (next >= code.size()) return Fail(f, pc, "execution runs off the end of the code");
    if (Status s = flow_to(pc, next, after, handlers_after); !s.ok()) return s;
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
    if (f.file > m.imports.size())
      return Status::Corruption(fmt::format("invalid bytecode: the function {} names a file it does not import", f.name));
    if (f.IsMethod() && !f.upvalues.empty())  // the VM runs such a function without a closure
      return Status::Corruption(fmt::format("invalid bytecode: the method {} captures variables", f.name));
    if (Status s = VerifyFunction(m, f, &depths); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ComputeStackDepths(const Module& m, uint32_t function, std::vector<int>* depths) {
  if (function >= m.functions.size()) return Status::Corruption("no such function");
  return VerifyFunction(m, m.functions[function], depths);
}

}  // namespace flow
