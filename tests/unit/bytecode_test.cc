#include <gtest/gtest.h>

#include "run_program.h"
#include "vm/base/coding.h"
#include "vm/bytecode/decode.h"
#include "vm/bytecode/module.h"

namespace flow {
namespace {

using testing::Compile;

const char* kProgram =
    "fn add(a, b) { return a + b }\n"
    "let xs = [1, 2.5, \"three\", {k: null}]\n"
    "for x in xs { print(x) }\n"
    "try { throw error(\"k\", \"m\") } catch e { print(e.kind) }\n"
    "print(add(1, 2))\n";

TEST(Bytecode, SerializeRoundTripsEveryField) {
  Module m = Compile(kProgram);
  std::string bytes = SerializeModule(m);
  Result<Module> back = DeserializeModule(bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(SerializeModule(*back), bytes);
  EXPECT_EQ(back->functions.size(), m.functions.size());
  EXPECT_EQ(back->constants.size(), m.constants.size());
  EXPECT_EQ(back->globals, m.globals);
  EXPECT_EQ(back->functions[1].name, "add");
  EXPECT_EQ(Disassemble(*back), Disassemble(m));
}

TEST(Bytecode, EveryTruncationIsRejected) {
  std::string bytes = SerializeModule(Compile(kProgram));
  for (size_t n = 0; n < bytes.size(); ++n) {
    Result<Module> r = DeserializeModule(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(r.ok()) << "accepted a file cut to " << n << " bytes";
  }
}

TEST(Bytecode, EveryFlippedByteIsRejected) {
  std::string bytes = SerializeModule(Compile(kProgram));
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x41);
    Result<Module> r = DeserializeModule(bad);
    EXPECT_FALSE(r.ok()) << "accepted a file with byte " << i << " altered";
  }
}

TEST(Bytecode, NewerVersionIsNamedInTheError) {
  std::string bytes = SerializeModule(Compile("print(1)"));
  bytes[8] = 9;  // version field follows the 8-byte magic
  Result<Module> r = DeserializeModule(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("version 9"), std::string::npos) << r.status().message();
}

// Builds a module whose one function has the given code, for the verifier tests.
Module OneFunction(std::string code, uint32_t max_stack = 8) {
  Module m;
  m.source_name = "hand.flow";
  Function f;
  f.name = "<script>";
  f.max_stack = max_stack;
  f.code = std::move(code);
  m.functions.push_back(std::move(f));
  Constant c;
  c.kind = Constant::Kind::kInt;
  c.i = 7;
  m.constants.push_back(c);
  return m;
}

std::string Ins(Op op, std::initializer_list<uint32_t> operands = {}) {
  std::string out(1, static_cast<char>(op));
  auto it = operands.begin();
  for (char kind : GetOpInfo(op).operands) {
    uint32_t v = it == operands.end() ? 0 : *it++;
    int w = OperandWidth(kind);
    if (w == 1) PutFixed8(&out, static_cast<uint8_t>(v));
    else if (w == 2) PutFixed16(&out, static_cast<uint16_t>(v));
    else PutFixed32(&out, v);
  }
  return out;
}

TEST(Verifier, AcceptsAWellFormedFunction) {
  Module m = OneFunction(Ins(Op::CONST, {0}) + Ins(Op::RETURN));
  EXPECT_TRUE(VerifyModule(m).ok()) << VerifyModule(m).message();
}

TEST(Verifier, RejectsBadOperandsJumpsAndStackUse) {
  struct Case {
    std::string code;
    const char* why;
  } cases[] = {
      {Ins(Op::CONST, {5}) + Ins(Op::RETURN), "constant index out of range"},
      {Ins(Op::POP) + Ins(Op::POP) + Ins(Op::PUSH_NULL) + Ins(Op::RETURN), "stack underflow"},
      {Ins(Op::JUMP, {3}) + Ins(Op::PUSH_NULL) + Ins(Op::RETURN), "is not an instruction"},
      {Ins(Op::JUMP, {1000}), "is not an instruction"},
      {Ins(Op::GET_LOCAL, {4}) + Ins(Op::RETURN), "local slot outside the frame"},
      {Ins(Op::GET_LOCAL2, {0, 4}) + Ins(Op::POP) + Ins(Op::RETURN), "local slot outside the frame"},
      {Ins(Op::GET_LOCAL2, {4, 0}) + Ins(Op::POP) + Ins(Op::RETURN), "local slot outside the frame"},
      {Ins(Op::PUSH_NULL), "runs off the end"},
      {Ins(Op::GET_GLOBAL, {0}) + Ins(Op::RETURN), "global slot out of range"},
      {Ins(Op::CALL_BUILTIN, {999, 0}) + Ins(Op::RETURN), "unknown builtin"},
      {Ins(Op::GET_UPVAL, {0}) + Ins(Op::RETURN), "upvalue index out of range"},
      {std::string(1, static_cast<char>(250)), "unknown opcode"},
      {Ins(Op::CONST, {0}).substr(0, 3), "truncated operands"},
      // A loop whose body pushes: the depth at its head disagrees between the two paths.
      {Ins(Op::PUSH_NULL) + Ins(Op::LOOP, {0}), "disagrees"},
  };
  for (const auto& c : cases) {
    Status s = VerifyModule(OneFunction(c.code));
    EXPECT_FALSE(s.ok()) << c.why;
    EXPECT_NE(s.message().find(c.why), std::string::npos) << s.message();
  }
}

TEST(Verifier, RejectsUnbalancedHandlers) {
  // The operand of a guarded block, then the block's value: an END needs both on the stack.
  std::string two = Ins(Op::CONST, {0}) + Ins(Op::CONST, {0});
  struct Case {
    std::string code;
    const char* why;
  } cases[] = {
      {two + Ins(Op::STEP_END) + Ins(Op::RETURN), "STEP_END does not close the innermost open handler"},
      {two + Ins(Op::RETRY_END) + Ins(Op::RETURN), "RETRY_END does not close"},
      {two + Ins(Op::TIMEOUT_END) + Ins(Op::RETURN), "TIMEOUT_END does not close"},
      {two + Ins(Op::BREAKER_END) + Ins(Op::RETURN), "BREAKER_END does not close"},
      {Ins(Op::POP_HANDLER) + Ins(Op::PUSH_NULL) + Ins(Op::RETURN), "POP_HANDLER with no open handler"},
      // A retry closed as a timeout.
      {Ins(Op::CONST, {0}) + Ins(Op::RETRY_BEGIN) + Ins(Op::CONST, {0}) + Ins(Op::TIMEOUT_END) + Ins(Op::RETURN),
       "TIMEOUT_END does not close"},
      // Closed with the wrong values on the stack: the operand was popped inside the block.
      {Ins(Op::CONST, {0}) + Ins(Op::TIMEOUT_BEGIN) + Ins(Op::POP) + Ins(Op::CONST, {0}) + Ins(Op::CONST, {0}) +
           Ins(Op::TIMEOUT_END) + Ins(Op::RETURN),
       "pops below the stack of an open handler"},
      // One path opens a try, the other does not, and they meet.
      {Ins(Op::PUSH_TRUE) + Ins(Op::JUMP_IF_FALSE, {16}) + Ins(Op::TRY_BEGIN, {18}) + Ins(Op::JUMP, {16}) +
           Ins(Op::PUSH_NULL) + Ins(Op::RETURN) + Ins(Op::RETURN),
       "handlers open disagree"},
      // A step whose skip target is not an instruction.
      {Ins(Op::CONST, {0}) + Ins(Op::STEP_BEGIN, {0, 999}) + Ins(Op::CONST, {0}) + Ins(Op::STEP_END) + Ins(Op::RETURN),
       "jump to 999 is not an instruction"},
  };
  for (const auto& c : cases) {
    Status s = VerifyModule(OneFunction(c.code));
    EXPECT_FALSE(s.ok()) << c.why;
    EXPECT_NE(s.message().find(c.why), std::string::npos) << s.message();
  }
}

const char* kGuarded =
    "let a = 1\nlet b = 2\nprint(a == b)\n"
    "fn f(n) {\n"
    "  for i in range(n) {\n"
    "    let v = step \"s${i}\" { retry 2 { timeout 1s { breaker \"svc\" { limit api (concurrency: 1) { if i == 1 { break } i * 2 } } } } }\n"
    "    try { if v > 2 { continue } print(v) } catch e { print(e.kind) }\n"
    "  }\n"
    "  return retry (attempts: 2) { step \"last\" once { n } }\n"
    "}\n"
    "print(f(3))\n";

// Mutants of the kind the adversarial pass sealed with a valid checksum: a reachable
// one-byte instruction turned into an opcode that closes a handler (EQ -> TIMEOUT_END
// crashed the VM), or an opcode that opens one turned into a plain one (RETRY_BEGIN ->
// PUSH_TRUE). Each makes the VM close a handler that is not there, and the verifier must
// refuse it. (A handler left open by a RETURN is fine: the VM drops a frame's handlers.)
TEST(Verifier, RejectsEveryMutantThatClosesAHandlerNotOpen) {
  const Op kClosers[] = {Op::STEP_END, Op::RETRY_END, Op::TIMEOUT_END, Op::BREAKER_END, Op::LIMIT_END,
                         Op::POP_HANDLER};
  Module original = Compile(kGuarded);
  ASSERT_TRUE(VerifyModule(original).ok());
  int mutants = 0;
  for (size_t fn = 0; fn < original.functions.size(); ++fn) {
    const std::string& code = original.functions[fn].code;
    std::vector<int> depths;
    ASSERT_TRUE(ComputeStackDepths(original, static_cast<uint32_t>(fn), &depths).ok());
    for (uint32_t pc = 0; pc < code.size();) {
      Instruction ins;
      ASSERT_TRUE(DecodeInstruction(code, pc, &ins));
      std::vector<Op> replacements;
      bool opener = ins.op == Op::RETRY_BEGIN || ins.op == Op::TIMEOUT_BEGIN || ins.op == Op::BREAKER_BEGIN ||
                    ins.op == Op::LIMIT_BEGIN;
      if (opener) {
        replacements = {Op::NOP, Op::PUSH_TRUE, Op::POP};
      } else if (ins.size == 1 && depths[pc] >= 0 && GetOpInfo(ins.op).name.find("END") == std::string_view::npos &&
                 ins.op != Op::POP_HANDLER) {
        replacements.assign(std::begin(kClosers), std::end(kClosers));
      }
      for (Op r : replacements) {
        Module m = original;
        m.functions[fn].code[pc] = static_cast<char>(r);
        Status s = VerifyModule(m);
        EXPECT_FALSE(s.ok()) << "function " << fn << " pc " << pc << ": " << GetOpInfo(ins.op).name << " -> "
                             << GetOpInfo(r).name << " accepted";
        ++mutants;
      }
      pc += ins.size;
    }
  }
  EXPECT_GT(mutants, 40);
}

TEST(Verifier, AcceptsEveryHandlerTheCompilerEmits) {
  // Guarded blocks nested in every way, left by break, continue, return and throw.
  EXPECT_TRUE(VerifyModule(Compile(kGuarded)).ok());
  EXPECT_TRUE(VerifyModule(Compile(
      "fn g() { while true { try { step \"k\" { timeout 1s { return 1 } } } catch e { break } } return 0 }\n"
      "for x in [1] { retry 3 { try { throw error(\"x\", \"y\") } catch e { continue } } }\n"
      "print(g())\n")).ok());
}

TEST(Verifier, RejectsStackDeeperThanDeclared) {
  Module m = OneFunction(Ins(Op::PUSH_NULL) + Ins(Op::PUSH_NULL) + Ins(Op::RETURN), 2);
  Status s = VerifyModule(m);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("max_stack"), std::string::npos) << s.message();
}

TEST(Opcodes, TableDrivesSizesAndEffects) {
  EXPECT_EQ(InstructionSize(Op::CONST), 5);
  EXPECT_EQ(InstructionSize(Op::FOR_ITER), 1 + 2 + 1 + 4);
  uint32_t operands[3] = {3, 0, 0};
  EXPECT_EQ(GetStackEffect(Op::CALL, operands).pops, 4);
  EXPECT_EQ(GetStackEffect(Op::BUILD_MAP, operands).pops, 6);
  EXPECT_TRUE(GetOpInfo(Op::CALL_BUILTIN).flags & kMayEffect);
  EXPECT_TRUE(GetBuiltinInfo(static_cast<uint16_t>(Builtin::PRINT)).effectful);
  EXPECT_FALSE(GetBuiltinInfo(static_cast<uint16_t>(Builtin::LEN)).effectful);
  EXPECT_EQ(FindBuiltin("json.parse"), static_cast<int>(Builtin::JSON_PARSE));
  EXPECT_TRUE(IsBuiltinModule("math"));
  EXPECT_FALSE(IsBuiltinModule("mat"));
}

TEST(Coding, ReaderNeverReadsPastTheEnd) {
  std::string buf;
  PutVarint(&buf, 300);
  PutBytes(&buf, "abc");
  Reader r(buf);
  EXPECT_EQ(r.Varint(), 300u);
  EXPECT_EQ(r.Bytes(), "abc");
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(r.U32(), 0u);
  EXPECT_TRUE(r.failed());
  std::string lying;
  PutVarint(&lying, 1000);  // claims 1000 bytes, has none
  Reader r2(lying);
  EXPECT_TRUE(r2.Bytes().empty());
  EXPECT_TRUE(r2.failed());
}

}  // namespace
}  // namespace flow
