// A run keeps the code it started with; its program file may have moved on since
// (docs/checkpoint.md, "The store": code/HASH.flow).
#include <sys/stat.h>

#include <cerrno>

#include "runtime/program_file.h"
#include "runtime/runtime.h"
#include "vm/base/coding.h"

namespace flow::runtime {

ProgramFileState CheckProgramFile(const store::RunRecord& record, const std::optional<std::string>& source) {
  struct stat st;
  if (stat(record.program.c_str(), &st) != 0) return errno == ENOENT ? ProgramFileState::kGone : ProgramFileState::kUnknown;
  std::string bytes, error;
  if (!ReadFile(record.program, &bytes, &error, kMaxProgramBytes)) return ProgramFileState::kUnknown;
  // By content hash: the stored source's, or (a run started from a .flowc file) the stored
  // bytecode's. A run stored before sources were has neither to compare: unknown.
  if (source) return store::CodeHash(bytes) == store::CodeHash(*source) ? ProgramFileState::kUnchanged : ProgramFileState::kChanged;
  if (IsBytecodeFile(record.program, bytes))
    return store::CodeHash(bytes) == record.code_hash ? ProgramFileState::kUnchanged : ProgramFileState::kChanged;
  return ProgramFileState::kUnknown;
}

ProgramFileState CheckProgramFiles(const store::RunRecord& record, const std::optional<std::string>& source,
                                   const Module& module, std::string* file) {
  *file = record.program;
  ProgramFileState state = CheckProgramFile(record, source);
  if (state != ProgramFileState::kUnchanged) return state;
  for (const auto& import : module.imports) {
    struct stat st;
    std::string bytes, error;
    *file = import.name;
    if (stat(import.name.c_str(), &st) != 0) {
      if (errno == ENOENT) return ProgramFileState::kGone;
      continue;
    }
    if (ReadFile(import.name, &bytes, &error, kMaxProgramBytes) && Checksum(bytes) != import.hash)
      return ProgramFileState::kChanged;
  }
  *file = record.program;
  return ProgramFileState::kUnchanged;
}

}  // namespace flow::runtime
