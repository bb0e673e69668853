// The compiled-program cache (as Python's __pycache__): `flow run FILE.flow` keeps the
// module it compiled as a .flowc file named by a hash of what produced it, and a later run
// of the same source by the same flow binary loads that instead of parsing again (ANTLR's
// cold start dominates a short program's run). A cache never changes what a program does:
// any entry that cannot be read, is damaged or fails the verifier is a miss, and a cache
// that cannot be written is no cache. Layout and key: docs/bytecode.md, "The program cache".
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "vm/base/status.h"
#include "vm/bytecode/module.h"

namespace flow::runtime {

// The bounds of one cache folder: writing an entry evicts the oldest (by modification
// time) until both hold.
constexpr size_t kProgramCacheMaxEntries = 512;
constexpr uint64_t kProgramCacheMaxBytes = 64u << 20;

// The cache folder from the environment's values (null when unset): FLOW_CACHE_DIR if set
// (empty: no cache, returned as ""), else XDG_CACHE_HOME/flow, else HOME/.cache/flow, else "".
std::string ProgramCacheDir(const char* flow_cache_dir, const char* xdg_cache_home, const char* home);

// What identifies the compiler inside this process: the ELF build-id of the running binary
// (hex), or, without one, FLOW_VERSION, the bytecode format version and the identity of
// the executable file (device, inode, size, modification time). Empty when neither is
// known: then nothing is cached.
const std::string& CompilerIdentity();

// The entry's file name (32 hex digits of XXH3-128, then .flowc) for `source` compiled as
// `source_name` (the absolute path the module records) by the compiler `compiler_id`.
std::string ProgramCacheEntryName(const std::string& compiler_id, const std::string& source_name,
                                  const std::string& source);

class ProgramCache {
 public:
  // A cache in `dir` ("" = off) for the compiler `compiler_id` ("" = off).
  ProgramCache(std::string dir, std::string compiler_id);

  bool enabled() const { return !dir_.empty() && !compiler_id_.empty(); }

  // The module compiled from `source` as `source_name`, if an intact entry holds it.
  std::optional<Module> Find(const std::string& source_name, const std::string& source) const;

  // Keeps `module` (compiled from `source` as its source_name): written to a temporary file
  // and renamed into place, then the oldest entries evicted past the bounds. The folder is
  // made if missing. A failure leaves the cache as it was; the caller may ignore it.
  Status Store(const std::string& source, const Module& module) const;

 private:
  std::string EntryPath(const std::string& source_name, const std::string& source) const;
  void Evict() const;

  std::string dir_;
  std::string compiler_id_;
};

}  // namespace flow::runtime
