// The sources kept beside the bytecode in code/, and the lock that keeps gc from removing
// code a run is being created on (docs/checkpoint.md, "The store" and "Retention").
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "store/keys.h"
#include "store/file_store.h"

namespace flow::store {

Status FileStore::PutSource(const std::string& hash, std::string_view text) {
  std::string path = SourcePath(dir_, hash);
  struct stat st;
  // Bytecode names its source lines, so any source that compiled to it quotes the same lines.
  if (stat(path.c_str(), &st) == 0) return Status::Ok();
  return WriteFileAtomically(path, text);
}

Status FileStore::GetSource(const std::string& hash, std::string* text) const {
  std::string path = SourcePath(dir_, hash);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return Status::NotFound(fmt::format("no source is stored for the code {}", hash));
    return Status::IOError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  *text = buf.str();
  return Status::Ok();
}

namespace {

class FlockCodeLock final : public CodeLock {
 public:
  explicit FlockCodeLock(int fd) : fd_(fd) {}
  ~FlockCodeLock() override { close(fd_); }  // releases the flock

 private:
  int fd_;
};

}  // namespace

Result<std::unique_ptr<CodeLock>> FileStore::LockCode(bool exclusive) {
  std::string path = CodeLockPath(dir_);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno == EINTR) continue;
    int error = errno;
    close(fd);
    return Status::IOError(fmt::format("cannot lock {}: {}", path, std::strerror(error)));
  }
  return std::unique_ptr<CodeLock>(new FlockCodeLock(fd));
}

}  // namespace flow::store
