#include "runtime/program_cache.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "runtime/program_file.h"
#include "vm/base/coding.h"

namespace flow::runtime {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kEntrySuffix = ".flowc";
constexpr size_t kEntryHashDigits = 32;  // XXH3-128 in hex
// A temporary file older than this was left by a process that died before its rename.
constexpr auto kStaleTempAge = std::chrono::hours(1);

// The NT_GNU_BUILD_ID note of the main program (the first object dl_iterate_phdr reports),
// in hex; "" if it has none.
int FindBuildId(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::string*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    auto* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    const char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      auto* note = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const char* name = p + sizeof(ElfW(Nhdr));
      const char* desc = name + ((note->n_namesz + 3) & ~3u);
      const char* next = desc + ((note->n_descsz + 3) & ~3u);
      if (next > end) break;
      if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        for (uint32_t k = 0; k < note->n_descsz; ++k) *out += fmt::format("{:02x}", static_cast<uint8_t>(desc[k]));
        return 1;
      }
      p = next;
    }
  }
  return 1;  // only the main program
}

std::string ExecutableFileIdentity() {
  struct stat st;
  if (stat("/proc/self/exe", &st) != 0) return "";
  return fmt::format("flow {} bytecode {} exe {}:{}:{}:{}.{}", FLOW_VERSION, kBytecodeFormatVersion, st.st_dev,
                     st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

bool IsEntryName(const std::string& name) {
  if (name.size() != kEntryHashDigits + kEntrySuffix.size() || !name.ends_with(kEntrySuffix)) return false;
  return std::all_of(name.begin(), name.begin() + kEntryHashDigits,
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsTempName(const std::string& name) {
  size_t at = name.find(".tmp.");
  return at != std::string::npos && IsEntryName(name.substr(0, at));
}

bool WriteAll(int fd, std::string_view bytes) {
  for (size_t done = 0; done < bytes.size();) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// mkdir -p, the cache folder itself private to its user.
bool MakeCacheDir(const std::string& dir) {
  std::error_code ec;
  fs::path parent = fs::path(dir).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  return mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST;
}

}  // namespace

std::string ProgramCacheDir(const char* flow_cache_dir, const char* xdg_cache_home, const char* home) {
  if (flow_cache_dir) return flow_cache_dir;
  // The XDG base-directory spec: a relative XDG_CACHE_HOME is invalid and ignored.
  if (xdg_cache_home && xdg_cache_home[0] == '/') return std::string(xdg_cache_home) + "/flow";
  if (home && *home) return std::string(home) + "/.cache/flow";
  return "";
}

const std::string& CompilerIdentity() {
  static const std::string identity = [] {
    std::string build_id;
    dl_iterate_phdr(FindBuildId, &build_id);
    return build_id.empty() ? ExecutableFileIdentity() : "build-id " + build_id;
  }();
  return identity;
}

std::string ProgramCacheEntryName(const std::string& compiler_id, const std::string& source_name,
                                  const std::string& source) {
  // Each field length-prefixed, so that no two different triples hash the same bytes.
  std::string key;
  for (const std::string* field : {&compiler_id, &source_name, &source}) {
    key += fmt::format("{}:", field->size());
    key += *field;
  }
  XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  return fmt::format("{:016x}{:016x}{}", h.high64, h.low64, kEntrySuffix);
}

ProgramCache::ProgramCache(std::string dir, std::string compiler_id)
    : dir_(std::move(dir)), compiler_id_(std::move(compiler_id)) {}

std::string ProgramCache::EntryPath(const std::string& source_name, const std::string& source) const {
  return dir_ + "/" + ProgramCacheEntryName(compiler_id_, source_name, source);
}

std::optional<Module> ProgramCache::Find(const std::string& source_name, const std::string& source) const {
  if (!enabled()) return std::nullopt;
  std::string path = EntryPath(source_name, source);
  std::string bytes, error;
  if (!ReadFile(path, &bytes, &error, kProgramCacheMaxBytes)) return std::nullopt;
  Result<Module> loaded = DeserializeModule(bytes);  // checksum and verifier, as any .flowc
  if (!loaded.ok() || loaded->source_name != source_name) return std::nullopt;
  // The files it imports must be as they were compiled.
  for (const ImportedFile& f : loaded->imports) {
    std::string text, error;
    if (!ReadFile(f.name, &text, &error, kMaxProgramBytes) || Checksum(text) != f.hash) return std::nullopt;
  }
  utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // recently used: evicted last
  return std::move(loaded.value());
}

Status ProgramCache::Store(const std::string& source, const Module& module) const {
  if (!enabled()) return Status::Ok();
  std::string bytes = SerializeModule(module);
  if (bytes.size() > kProgramCacheMaxBytes) return Status::InvalidArgument("the module is larger than the cache");
  if (!MakeCacheDir(dir_)) return Status::IOError(fmt::format("cannot create {}: {}", dir_, std::strerror(errno)));
  std::string path = EntryPath(module.source_name, source);
  std::string tmp = fmt::format("{}.tmp.{}", path, getpid());
  // No fsync: an entry cut by a crash fails its checksum and is a miss, then rewritten.
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status::IOError(fmt::format("cannot write {}: {}", tmp, std::strerror(errno)));
  bool ok = WriteAll(fd, bytes);
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    int error = errno;
    unlink(tmp.c_str());
    return Status::IOError(fmt::format("cannot write {}: {}", path, std::strerror(error)));
  }
  Evict();
  return Status::Ok();
}

void ProgramCache::Evict() const {
  struct Entry {
    fs::file_time_type mtime;
    uint64_t size;
    fs::path path;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  std::error_code ec;
  auto now = fs::file_time_type::clock::now();
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::error_code stat_ec;
    fs::file_time_type mtime = it->last_write_time(stat_ec);
    if (stat_ec) continue;
    if (IsTempName(name)) {
      if (now - mtime > kStaleTempAge) fs::remove(it->path(), stat_ec);
      continue;
    }
    if (!IsEntryName(name) || !it->is_regular_file(stat_ec)) continue;
    uint64_t size = it->file_size(stat_ec);
    if (stat_ec) continue;
    entries.push_back({mtime, size, it->path()});
    total += size;
  }
  if (entries.size() <= kProgramCacheMaxEntries && total <= kProgramCacheMaxBytes) return;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.mtime < b.mtime; });
  size_t count = entries.size();
  for (const Entry& e : entries) {
    if (count <= kProgramCacheMaxEntries && total <= kProgramCacheMaxBytes) break;
    fs::remove(e.path, ec);  // false without an error: another flow removed it first
    if (!ec) {
      --count;
      total -= e.size;
    }
  }
}

}  // namespace flow::runtime
