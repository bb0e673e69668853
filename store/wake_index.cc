// The wake index: wake/WAKE_MS-ID, empty files (no disk blocks), one per time a run may be
// due. A worker lists them once, then follows new ones through inotify, so its work
// grows with the runs that come due, not with the runs in the store
// (docs/checkpoint.md, "The wake index").
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "store/keys.h"
#include "store/file_store.h"

namespace flow::store {

std::string FileStore::WakeDir() const { return dir_ + "/" + kWakeDir; }

Result<std::unique_ptr<StoreImpl::WakeWatch>> FileStore::WatchWakes() {
  return Status::NotSupported("a folder store's hints are files: watch " + WakeDir());
}

Status FileStore::NoteWake(const std::string& id, int64_t wake_ms) {
  // Zero-padded, so that names sort by time.
  std::string path = fmt::format("{}/{:019}-{}", WakeDir(), wake_ms < 0 ? 0 : wake_ms, id);
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::close(fd);
      return Status::Ok();
    }
    if (errno != ENOENT || attempt > 0) break;
    ::mkdir(WakeDir().c_str(), 0755);  // a store made before the index existed
  }
  return Status::IOError(fmt::format("cannot write the wake hint {}: {}", path, std::strerror(errno)));
}

bool Store::ParseWakeHint(std::string_view file, WakeHint* out) {
  if (file.size() < 21 || file[19] != '-') return false;
  uint64_t ms = 0;  // 19 digits fit; past INT64_MAX the name is not one NoteWake wrote
  for (char c : file.substr(0, 19)) {
    if (c < '0' || c > '9') return false;
    ms = ms * 10 + (c - '0');
  }
  if (ms > static_cast<uint64_t>(INT64_MAX)) return false;
  std::string id(file.substr(20));
  if (!IsValidRunId(id)) return false;
  *out = {static_cast<int64_t>(ms), std::move(id), std::string(file)};
  return true;
}

Status FileStore::ListWakeHints(std::vector<WakeHint>* out) const {
  out->clear();
  std::error_code ec;
  std::filesystem::directory_iterator it(WakeDir(), ec);
  if (ec == std::errc::no_such_file_or_directory) return Status::Ok();
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    WakeHint h;
    if (Store::ParseWakeHint(it->path().filename().string(), &h)) out->push_back(std::move(h));
  }
  if (ec) return Status::IOError(fmt::format("cannot list {}: {}", WakeDir(), ec.message()));
  return Status::Ok();
}

void FileStore::DropWakeHint(const WakeHint& hint) { ::unlink((WakeDir() + "/" + hint.file).c_str()); }

}  // namespace flow::store
