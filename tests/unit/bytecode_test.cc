#include <gtest/gtest.h>

#include "run_program.h"
#include "vm/base/coding.h"
#include "vm/bytecode/decode.h"
#include "vm/bytecode/module.h"

namespace flow {
namespace {

Module Compile(const std::string& source) {
  Module module;
  Diagnostics diags;
  EXPECT_TRUE(CompileSource("t.flow", source, &module, &diags)) << diags.Render("t.flow", source);
  return module;
}

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
