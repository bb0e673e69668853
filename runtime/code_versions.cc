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

ProgramFileState CheckImportedFile(const ImportedFile& file, std::string* text) {
  struct stat st;
  if (stat(file.name.c_str(), &st) != 0) return errno == ENOENT ? ProgramFileState::kGone : ProgramFileState::kUnknown;
  std::string bytes, error;
  if (!ReadFile(file.name, &bytes, &error, kMaxProgramBytes)) return ProgramFileState::kUnknown;
  if (Checksum(bytes) != file.hash) return ProgramFileState::kChanged;
  if (text) *text = std::move(bytes);
  return ProgramFileState::kUnchanged;
}

ProgramFileState CheckProgramFiles(const store::RunRecord& record, const std::optional<std::string>& source,
                                   const Module& module, std::string* file) {
  *file = record.program;
  ProgramFileState state = CheckProgramFile(record, source);
  if (state != ProgramFileState::kUnchanged) return state;
  for (const auto& import : module.imports) {
    state = CheckImportedFile(import);
    if (state == ProgramFileState::kChanged || state == ProgramFileState::kGone) {
      *file = import.name;
      return state;
    }
  }
  return ProgramFileState::kUnchanged;
}

}  // namespace flow::runtime
