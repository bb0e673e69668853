// A compiled Flow program: constants, functions (code, upvalue descriptors, line and
// local-name tables) and the names of its globals. Plain data: the compiler builds it, the
// serializer writes and reads it (format in docs/bytecode.md), the verifier checks it, and
// the VM runs it.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vm/base/status.h"

namespace flow {

struct Constant {
  // On disk (the constant pool of a .flowc file, docs/bytecode.md): do not change the values.
  enum class Kind : uint8_t { kInt = 0, kFloat = 1, kString = 2 };
  Kind kind = Kind::kInt;
  int64_t i = 0;
  double f = 0;
  std::string s;
};

// Where a closure's captured variable comes from when the closure is created: a local slot
// of the enclosing frame, or one of the enclosing closure's own upvalues.
struct UpvalueDesc {
  bool from_parent_local = false;
  uint16_t index = 0;
};

struct LineEntry {
  uint32_t pc;    // first instruction of the run of code on this line
  uint32_t line;  // 1-based source line
};

struct LocalName {
  std::string name;
  uint16_t slot;
  uint32_t start_pc;  // live in [start_pc, end_pc)
  uint32_t end_pc;
};

struct Function {
  std::string name;
  // The file its code is from: 0 for the module's source_name, i for imports[i - 1].
  uint16_t file = 0;
  uint8_t arity = 0;
  uint32_t max_stack = 0;  // the most values the frame ever holds, slot 0 (the callee) included
  std::vector<UpvalueDesc> upvalues;
  std::string code;
  std::vector<LineEntry> lines;
  std::vector<LocalName> locals;

  uint32_t LineAt(uint32_t pc) const;
  // A method written in Flow ("list.map", from stdlib/methods.flow): its slot 0 is the
  // receiver, and it runs without a closure. No other function has a dot in its name.
  bool IsMethod() const { return name.find('.') != std::string::npos; }
};

// A file the program imports (directly or through another import), compiled into it.
struct ImportedFile {
  std::string name;   // its absolute path, as traces show it
  uint64_t hash = 0;  // XXH3-64 of its text: what the program cache checks it against
};

struct Module {
  std::string source_name;  // the .flow file it came from, for messages and traces
  std::vector<ImportedFile> imports;  // in the order the compiler first met them
  std::vector<Constant> constants;
  std::vector<Function> functions;  // functions[0] is the top level of the script
  std::vector<std::string> globals;

  // The file a function's code is from.
  const std::string& FileOf(const Function& f) const { return f.file == 0 ? source_name : imports[f.file - 1].name; }
};

// The bytecode file format (docs/bytecode.md); its version is in every file's header.
// Version 2 added imports and each function's file; version 1 files (none) still load.
constexpr uint32_t kBytecodeFormatVersion = 2;
std::string SerializeModule(const Module& module);
Result<Module> DeserializeModule(std::string_view bytes);  // verifies it too
bool LooksLikeBytecode(std::string_view bytes);

// Checks every operand, jump, constant index and the stack depth of every function, so that
// the VM can run the module without bounds checks of its own.
Status VerifyModule(const Module& module);

// The stack depth at the start of every instruction of a verified function (-1 where no
// instruction starts or none is reachable): what a restored frame must agree with.
Status ComputeStackDepths(const Module& module, uint32_t function, std::vector<int>* depths);

// Human-readable listing of every function.
std::string Disassemble(const Module& module);

}  // namespace flow
