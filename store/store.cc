// The store folder: content-addressed code, run records, run locks. Names in store/keys.h;
// formats in docs/checkpoint.md (the run record: a sealed record, version 2, of the
// RunRecord's fields in declaration order, "The run record").
#include <algorithm>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "store/file_store.h"
#include "store/pg/pg_store.h"
#include "store/keys.h"
#include "vm/base/record.h"

namespace flow::store {

namespace {

// Version 1 had no error_kind; it is still read (DecodeRunRecord).
// Version 2 had no keep_checkpoints (it reads as 0, the default).
// Version 3 had no queue and after_run (they read as "").
constexpr uint8_t kRunRecordVersion = 4;
constexpr uint8_t kRunRecordVersion3 = 3;
constexpr uint8_t kRunRecordVersion2 = 2;
constexpr uint8_t kRunRecordVersion1 = 1;

std::string Errno() { return std::strerror(errno); }

Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return Status::Ok();
  return Status::IOError(fmt::format("cannot create {}: {}", path, Errno()));
}

}  // namespace

const char* RunStatusName(RunStatus s) {
  switch (s) {
    case RunStatus::kRunning: return "running";
    case RunStatus::kSuspended: return "suspended";
    case RunStatus::kCompleted: return "completed";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kCrashed: return "crashed";
    case RunStatus::kCancelled: return "cancelled";
    case RunStatus::kQueued: return "queued";
    case RunStatus::kPoisoned: return "poisoned";
  }
  return "?";
}

bool ParseRunStatus(std::string_view name, RunStatus* out) {
  for (RunStatus s : {RunStatus::kRunning, RunStatus::kSuspended, RunStatus::kCompleted, RunStatus::kFailed,
                      RunStatus::kCrashed, RunStatus::kCancelled, RunStatus::kQueued, RunStatus::kPoisoned}) {
    if (name == RunStatusName(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

bool IsValidRunId(std::string_view id) {
  // Not starting with `.` (a hidden folder) or `-` (read as an option by the command line).
  if (id.empty() || id.size() > 64 || id[0] == '.' || id[0] == '-') return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  return true;
}

std::string NewRunId() {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  int ms = static_cast<int>(duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000);
  std::random_device rd;
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{:04x}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ms, rd() & 0xffff);
}

Status WriteFileSynced(const std::string& path, std::string_view bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(fmt::format("cannot write {}: {}", path, Errno()));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::IOError(fmt::format("cannot write {}: {}", path, Errno()));
      close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) return Status::IOError(fmt::format("cannot sync {}: {}", path, Errno()));
  return Status::Ok();
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  std::string tmp = fmt::format("{}.tmp.{}", path, getpid());
  if (Status s = WriteFileSynced(tmp, bytes); !s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return Status::IOError(fmt::format("cannot rename {}: {}", tmp, Errno()));
  }
  std::string folder = path.substr(0, path.rfind('/'));
  (void)SyncDir(folder.empty() ? "." : folder);
  return Status::Ok();
}

Status ReadFile(const std::string& path, std::string* bytes, uint64_t max_bytes) {
  // open/read, not a stream: `flow runs` reads one record per run, 100,000 of them. Not
  // blocking, and only a regular file of a sane size: a FIFO or a huge file where a record
  // belongs is damage, never a hang or an exhausted memory.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::NotFound(path);
    return Status::IOError(fmt::format("cannot read {}: {}", path, Errno()));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) > max_bytes) {
    close(fd);
    return Status::Corruption(fmt::format("{} is not a regular file of at most {} bytes", path, max_bytes));
  }
  bytes->clear();
  bytes->reserve(static_cast<size_t>(st.st_size));
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::IOError(fmt::format("cannot read {}: {}", path, Errno()));
      close(fd);
      return s;
    }
    if (n == 0 || bytes->size() + static_cast<size_t>(n) > max_bytes) break;
    bytes->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return Status::Ok();
}

Status SyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(fmt::format("cannot open {}: {}", dir, Errno()));
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return Status::IOError(fmt::format("cannot sync {}: {}", dir, Errno()));
  return Status::Ok();
}

namespace {

// Does `dir` hold nothing but (some of) a store's own folders?
bool HoldsOnlyStoreFolders(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name != kCodeDir && name != kRunsDir) return false;
  }
  return !ec;
}

// Marks `folder` as the top of a hierarchy (ext4's FS_TOPDIR_FL, `chattr +T`): the runs'
// folders in it are unrelated, so the Orlov allocator spreads them over block groups. A run
// creates and deletes about ten files; packed into one group, every file a burst of runs
// creates first skips the inodes deleted in the last seconds (ext4 without a journal
// checks each: `recently_deleted`), a fifth of a worker's CPU at 32 runs at once
// (docs/checkpoint.md, "runs/ spreads its folders"). Best effort: other file systems
// ignore it, and a folder this process may not change keeps what it has.
void MarkTopOfUnrelatedFolders(const std::string& folder) {
  int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_TOPDIR_FL)) {
    flags |= FS_TOPDIR_FL;
    ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  ::close(fd);
}

}  // namespace

Result<std::shared_ptr<FileStore>> FileStore::Open(const std::string& dir, bool create) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    if (!create) return Status::NotFound(fmt::format("no store at {}", dir));
    if (Status s = MakeDir(dir); !s.ok()) return s;
  } else if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("the store {} is not a folder", dir));
  }
  for (const char* sub : {kCodeDir, kRunsDir}) {
    std::string path = dir + "/" + sub;
    if (stat(path.c_str(), &st) != 0) {
      if (!create) {
        // An empty folder, or one that another process is making into a store right now
        // (it holds only some of the store's folders): no store yet, as if it did not exist.
        if (HoldsOnlyStoreFolders(dir)) return Status::NotFound(fmt::format("no store at {}", dir));
        return Status::Corruption(fmt::format("{} is not a Flow store (no {} folder)", dir, sub));
      }
      if (Status s = MakeDir(path); !s.ok()) return s;
    }
  }
  MarkTopOfUnrelatedFolders(dir + "/" + kRunsDir);  // a store made before this flow gains it too
  return std::shared_ptr<FileStore>(new FileStore(dir));
}

std::string PrintableLocation(const std::string& location) {
  return pg::IsPostgresAddress(location) ? pg::RedactedAddress(location) : location;
}

Result<Store> Store::Open(const std::string& location, bool create) {
  if (pg::IsPostgresAddress(location)) {
    Result<std::shared_ptr<pg::PgStore>> st = pg::PgStore::Open(location, create);
    if (!st.ok()) return st.status();
    return Store(std::move(st.value()));
  }
  Result<std::shared_ptr<FileStore>> st = FileStore::Open(location, create);
  if (!st.ok()) return st.status();
  return Store(std::move(st.value()));
}

// Names are checked here, once for both backends: a backend is given only good ones.
Status Store::WriteQueueCap(const std::string& queue, uint32_t cap) {
  if (!IsValidQueueName(queue)) return Status::InvalidArgument(fmt::format("`{}` is not a queue name", queue));
  return impl_->WriteQueueCap(queue, cap);
}

Status Store::WriteSchedule(const ScheduleRecord& record) {
  if (!IsValidScheduleName(record.name))
    return Status::InvalidArgument(fmt::format("`{}` is not a schedule name", record.name));
  return impl_->WriteSchedule(record);
}

Result<ScheduleRecord> Store::ReadSchedule(const std::string& name) const {
  if (!IsValidScheduleName(name)) return Status::InvalidArgument(fmt::format("`{}` is not a schedule name", name));
  return impl_->ReadSchedule(name);
}

Result<std::unique_ptr<RunDb>> FileStore::OpenRunDb(const std::string& id, bool create) {
  return RunDb::Open(RunDbDir(id), {.create = create});
}

std::string CodeHash(std::string_view bytes) {
  XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
  return fmt::format("{:016x}{:016x}", h.high64, h.low64);
}

Result<std::string> FileStore::PutCode(std::string_view bytes) {
  std::string hash = CodeHash(bytes);
  std::string path = CodePath(dir_, hash);
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && static_cast<size_t>(st.st_size) == bytes.size()) return hash;
  if (Status s = WriteFileAtomically(path, bytes); !s.ok()) return s;
  return hash;
}

Status FileStore::GetCode(const std::string& hash, std::string* bytes) const {
  Status s = ReadFile(CodePath(dir_, hash), bytes);
  if (s.IsNotFound()) return Status::Corruption(fmt::format("the bytecode {} of this run is missing from the store", hash));
  if (!s.ok()) return s;
  if (CodeHash(*bytes) != hash)
    return Status::Corruption(fmt::format("the stored bytecode {} is damaged (its content no longer matches its hash)", hash));
  return Status::Ok();
}

std::string FileStore::RunDbDir(const std::string& id) const { return RunFilePath(dir_, id, kDbDir); }

std::string FileStore::RunDir(const std::string& id) const { return RunPath(dir_, id); }

Status FileStore::CreateRunDir(const std::string& id, bool generated_id) {
  std::string path = RunPath(dir_, id);
  // A row left by a run of this id whose folder was removed by hand must not speak for the
  // new one: it goes before the folder comes.
  if (struct stat st; !generated_id && stat(path.c_str(), &st) != 0) {
    if (Status s = ForgetIndexedRun(id); !s.ok()) return s;
  }
  if (mkdir(path.c_str(), 0755) != 0) {
    if (errno == EEXIST) return Status::InvalidArgument(fmt::format("a run with id {} already exists", id));
    return Status::IOError(fmt::format("cannot create {}: {}", path, Errno()));
  }
  return Status::Ok();
}

Status FileStore::RemoveRunDir(const std::string& id) {
  std::error_code ec;
  std::filesystem::remove_all(RunPath(dir_, id), ec);
  if (ec) return Status::IOError(fmt::format("cannot remove the run folder of {}: {}", id, ec.message()));
  return Status::Ok();
}

Status FileStore::ClearRunDir(const std::string& id) {
  // A folder taken over may hold a row's run no more (its packed file lost): the row goes.
  if (Status s = ForgetIndexedRun(id); !s.ok()) return s;
  std::error_code ec;
  for (const char* leftover : {kDbDir, kMarkFile, kOriginFile}) std::filesystem::remove_all(RunFilePath(dir_, id, leftover), ec);
  if (ec) return Status::IOError(fmt::format("cannot clear the run folder of {}: {}", id, ec.message()));
  return Status::Ok();
}

Status FileStore::RequestCancel(const std::string& id) {
  return WriteFileAtomically(RunFilePath(dir_, id, kCancelFile), "cancel\n");
}

Status FileStore::SetPoisoned(const std::string& id, std::string_view last_stderr) {
  // The mark first, whatever the index says: it is what keeps workers off the run. Then
  // its row goes (an indexed run is listed as neither live nor set aside); a pack or
  // IndexPackedRuns after this sees the mark and adds none (PackRun, IndexPackedRuns).
  if (Status s = WriteFileAtomically(RunFilePath(dir_, id, kPoisonedFile), last_stderr); !s.ok()) return s;
  return ForgetIndexedRun(id);
}

bool FileStore::IsPoisoned(const std::string& id, std::string* last_stderr) const {
  std::string ignored;
  return ReadFile(RunFilePath(dir_, id, kPoisonedFile), last_stderr ? last_stderr : &ignored).ok();
}

void FileStore::ClearPoisoned(const std::string& id) { ::unlink(RunFilePath(dir_, id, kPoisonedFile).c_str()); }

Result<int> FileStore::RecordCrash(const std::string& id, std::string_view last_stderr) {
  std::string path = RunFilePath(dir_, id, kCrashesFile), bytes;
  int count = 0;
  // A count that is not a sane number (a damaged file) counts as many crashes: the run is set aside.
  if (ReadFile(path, &bytes).ok()) count = static_cast<int>(std::clamp(std::strtoll(bytes.c_str(), nullptr, 10), 0LL, 1000000LL));
  ++count;
  if (Status s = WriteFileAtomically(path, fmt::format("{}\n{}", count, last_stderr)); !s.ok()) return s;
  return count;
}

void FileStore::ClearCrashes(const std::string& id) { ::unlink(RunFilePath(dir_, id, kCrashesFile).c_str()); }

bool FileStore::CancelRequested(const std::string& id) const {
  struct stat st;
  return stat(RunFilePath(dir_, id, kCancelFile).c_str(), &st) == 0;
}

bool FileStore::RunExists(const std::string& id) const {
  // The packed file, the record, the packed file again: an unpack writes the record before
  // it removes the packed file, a pack the packed file before it removes the record, so
  // one of the three looks finds the run whichever happens meanwhile.
  struct stat st;
  const std::string packed = RunFilePath(dir_, id, kPackedFile);
  return stat(packed.c_str(), &st) == 0 || stat(RunFilePath(dir_, id, kRunRecordFile).c_str(), &st) == 0 ||
         stat(packed.c_str(), &st) == 0;
}

Status FileStore::WriteRun(const RunRecord& r) {
  return WriteFileAtomically(RunFilePath(dir_, r.id, kRunRecordFile), EncodeRunRecord(r));
}

std::string EncodeRunRecord(const RunRecord& r) {
  std::string p;
  PutBytes(&p, r.id);
  PutBytes(&p, r.program);
  PutBytes(&p, r.code_hash);
  PutVarint(&p, r.args.size());
  for (const auto& [k, v] : r.args) {
    PutBytes(&p, k);
    PutBytes(&p, v);
  }
  PutFixed8(&p, static_cast<uint8_t>(r.status));
  PutBytes(&p, r.durability);
  PutFixed8(&p, r.virtual_time ? 1 : 0);
  PutVarint(&p, r.max_effects);
  PutVarint(&p, r.max_instructions);
  PutFixed64(&p, static_cast<uint64_t>(r.deadline_ms));
  PutVarint(&p, r.max_tokens);
  PutFixed64(&p, static_cast<uint64_t>(r.created_ms));
  PutFixed64(&p, static_cast<uint64_t>(r.updated_ms));
  PutVarint(&p, r.effects);
  PutFixed64(&p, static_cast<uint64_t>(r.pid));
  PutBytes(&p, r.detail);
  PutFixed64(&p, static_cast<uint64_t>(r.wake_ms));
  PutBytes(&p, r.waiting_signal);
  PutVarint(&p, r.signals_received);
  PutBytes(&p, r.error_kind);
  PutVarint(&p, r.keep_checkpoints);
  PutBytes(&p, r.queue);
  PutBytes(&p, r.after_run);
  return SealRecord(kRunRecordVersion, p);
}

Status FileStore::WriteRunRecordBytes(const RunRecord& r, std::string_view bytes) {
  return WriteFileAtomically(RunFilePath(dir_, r.id, kRunRecordFile), bytes);
}

Status FileStore::WriteOrigin(const std::string& id, std::string_view bytes) {
  return WriteFileAtomically(RunFilePath(dir_, id, kOriginFile), bytes);
}

Status FileStore::ReadOrigin(const std::string& id, std::string* bytes) const {
  return ReadFile(RunFilePath(dir_, id, kOriginFile), bytes);
}

Result<RunRecord> FileStore::ReadRun(const std::string& id) const {
  if (!IsValidRunId(id)) return Status::InvalidArgument(fmt::format("`{}` is not a run id", id));
  std::string bytes;
  if (Status s = ReadRunRecordBytes(id, &bytes); !s.ok()) return s;
  Result<RunRecord> r = DecodeRunRecord(bytes, fmt::format("the record of run {}", id));
  if (r.ok() && r->id != id) return Status::Corruption(fmt::format("the record of run {} is malformed", id));
  return r;
}

bool IsValidCodeHash(std::string_view hash) {
  return hash.size() == 32 && hash.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

namespace {

// A version 1 record kept no error kind: its failed run's detail, written as the first
// line of the uncaught error ("error: KIND: message"), names it. Read once, here, so that
// nothing else looks at the text.
std::string ErrorKindOfVersion1(const RunRecord& r) {
  constexpr std::string_view kPrefix = "error: ";
  if ((r.status != RunStatus::kFailed && r.status != RunStatus::kCancelled) || r.detail.rfind(kPrefix, 0) != 0)
    return "";
  size_t colon = r.detail.find(':', kPrefix.size());
  return colon == std::string::npos ? "" : r.detail.substr(kPrefix.size(), colon - kPrefix.size());
}

}  // namespace

Result<RunRecord> DecodeRunRecord(std::string_view bytes, const std::string& what) {
  std::string_view payload;
  const uint8_t version = bytes.empty() ? 0 : static_cast<uint8_t>(bytes[0]);
  const bool version1 = version == kRunRecordVersion1;
  const bool older = version == kRunRecordVersion1 || version == kRunRecordVersion2;
  const bool before_queues = older || version == kRunRecordVersion3;
  if (Status s = OpenRecord(bytes, before_queues ? version : kRunRecordVersion, what, &payload); !s.ok()) return s;
  Reader rd(payload);
  RunRecord r;
  r.id = std::string(rd.Bytes());
  r.program = std::string(rd.Bytes());
  r.code_hash = std::string(rd.Bytes());
  uint64_t n = rd.Varint();
  for (uint64_t i = 0; i < n && !rd.failed(); ++i) {
    std::string k(rd.Bytes());
    r.args.emplace_back(k, std::string(rd.Bytes()));
  }
  uint8_t status = rd.U8();
  r.durability = std::string(rd.Bytes());
  r.virtual_time = rd.U8() != 0;
  r.max_effects = rd.Varint();
  r.max_instructions = rd.Varint();
  r.deadline_ms = static_cast<int64_t>(rd.U64());
  r.max_tokens = rd.Varint();
  r.created_ms = static_cast<int64_t>(rd.U64());
  r.updated_ms = static_cast<int64_t>(rd.U64());
  r.effects = rd.Varint();
  r.pid = static_cast<int64_t>(rd.U64());
  r.detail = std::string(rd.Bytes());
  r.wake_ms = static_cast<int64_t>(rd.U64());
  r.waiting_signal = std::string(rd.Bytes());
  r.signals_received = rd.Varint();
  if (!version1) r.error_kind = std::string(rd.Bytes());
  if (!older) r.keep_checkpoints = static_cast<uint32_t>(std::min<uint64_t>(rd.Varint(), kKeepAllCheckpoints));
  if (!before_queues) {
    r.queue = std::string(rd.Bytes());
    r.after_run = std::string(rd.Bytes());
  }
  // The code hash names a file in code/: only the hex a store writes.
  if (rd.failed() || !rd.at_end() || status > static_cast<uint8_t>(RunStatus::kQueued) || !IsValidRunId(r.id) ||
      !IsValidCodeHash(r.code_hash))
    return Status::Corruption(what + " is malformed");
  r.status = static_cast<RunStatus>(status);
  if (version1) r.error_kind = ErrorKindOfVersion1(r);
  return r;
}

// Run locks are POSIX record locks (fcntl): the kernel drops them when the holder dies,
// and F_GETLK names the holder's pid without taking the lock.
namespace {

class FdRunLock final : public RunLock {
 public:
  explicit FdRunLock(int fd) : fd_(fd) {}
  ~FdRunLock() override { close(fd_); }  // closing the descriptor releases the lock

 private:
  int fd_;
};

struct flock WholeFile(short type) {
  struct flock fl{};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  return fl;
}

// The pid holding a lock on fd's file, or 0 if none.
int64_t LockHolder(int fd) {
  struct flock fl = WholeFile(F_WRLCK);
  if (fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK) return 0;
  return fl.l_pid;
}

}  // namespace

Result<std::unique_ptr<RunLock>> FileStore::LockRun(const std::string& id) {
  std::string path = RunFilePath(dir_, id, kLockFile);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(fmt::format("cannot open {}: {}", path, Errno()));
  struct flock fl = WholeFile(F_WRLCK);
  if (fcntl(fd, F_SETLK, &fl) != 0) {
    int64_t holder = LockHolder(fd);
    close(fd);
    return Status::InvalidArgument(fmt::format("run {} is being executed by another process (pid {})", id, holder));
  }
  return std::unique_ptr<RunLock>(new FdRunLock(fd));
}

Result<bool> FileStore::ClaimRun(const std::string&) { return true; }

bool FileStore::IsRunLive(const std::string& id, int64_t* pid) const {
  int fd = open(RunFilePath(dir_, id, kLockFile).c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  *pid = LockHolder(fd);
  close(fd);  // we held no lock, so closing releases nothing of ours
  return *pid != 0;
}

// shared/HEX(name): a sealed record (version 1) of the caller's bytes (docs/checkpoint.md,
// "Shared state"); read, changed and written back under an fcntl write lock on the file, so concurrent processes serialize.
static Status OpenShared(const std::string& dir, const std::string& name, short lock, int* fd_out, std::string* path) {
  if (Status s = MakeDir(SharedPath(dir)); !s.ok()) return s;
  // Its file is named HEX(name): 127 bytes make 254 characters, within a file name's 255.
  if (name.empty() || name.size() > 127) return Status::InvalidArgument("a shared name must be 1 to 127 bytes");
  *path = SharedFilePath(dir, name);
  int fd = open(path->c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(fmt::format("cannot open {}: {}", *path, Errno()));
  struct flock fl{};
  fl.l_type = lock;
  fl.l_whence = SEEK_SET;
  while (fcntl(fd, F_SETLKW, &fl) != 0) {
    if (errno != EINTR) {
      close(fd);
      return Status::IOError(fmt::format("cannot lock {}: {}", *path, Errno()));
    }
  }
  *fd_out = fd;
  return Status::Ok();
}

static Status ReadSharedLocked(int fd, const std::string& name, std::string* bytes) {
  std::string raw;
  char buf[4096];
  ssize_t n;
  off_t at = 0;
  while ((n = pread(fd, buf, sizeof buf, at)) > 0) {
    raw.append(buf, static_cast<size_t>(n));
    at += n;
  }
  bytes->clear();
  if (raw.empty()) return Status::Ok();
  std::string_view payload;
  if (Status s = OpenRecord(raw, 1, "the shared state " + name, &payload); !s.ok()) return s;
  *bytes = std::string(payload);
  return Status::Ok();
}

Status FileStore::ReadShared(const std::string& name, std::string* bytes) {
  int fd;
  std::string path;
  if (Status s = OpenShared(dir_, name, F_RDLCK, &fd, &path); !s.ok()) return s;
  Status s = ReadSharedLocked(fd, name, bytes);
  close(fd);
  return s;
}

Status FileStore::UpdateShared(const std::string& name, const std::function<void(std::string* bytes)>& update) {
  int fd;
  std::string path;
  if (Status s = OpenShared(dir_, name, F_WRLCK, &fd, &path); !s.ok()) return s;
  std::string bytes;
  if (Status s = ReadSharedLocked(fd, name, &bytes); !s.ok()) {
    close(fd);
    return s;
  }
  update(&bytes);
  std::string sealed = SealRecord(1, bytes);
  bool ok = pwrite(fd, sealed.data(), sealed.size(), 0) == static_cast<ssize_t>(sealed.size()) &&
            ftruncate(fd, static_cast<off_t>(sealed.size())) == 0;
  close(fd);  // releases the lock
  return ok ? Status::Ok() : Status::IOError(fmt::format("cannot write {}: {}", path, Errno()));
}

// mark := checkpoint:u64 checksum:u64 (docs/checkpoint.md, "The checkpoint mark"): runs/ID/mark,
// written with pwrite after each checkpoint, without fsync: in sync mode the checkpoint
// itself is already on disk, so the mark is never ahead of it; a lost mark only weakens
// the check. A truncated or rolled-back database log (which LevelDB reads as a clean end)
// shows as a database behind its mark.
namespace {

class FileMark final : public CheckpointMark {
 public:
  FileMark(int fd, std::string folder) : fd_(fd), folder_(std::move(folder)) {}
  ~FileMark() override { close(fd_); }

  Status Write(uint64_t checkpoint) override {
    std::string bytes;
    PutFixed64(&bytes, checkpoint);
    PutFixed64(&bytes, Checksum(bytes));
    if (pwrite(fd_, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
      return Status::IOError(fmt::format("cannot write the checkpoint mark: {}", Errno()));
    return Status::Ok();
  }

  // With its entry in the run's folder.
  Status Sync() override {
    if (fsync(fd_) != 0) return Status::IOError(fmt::format("cannot sync the checkpoint mark: {}", Errno()));
    int dfd = open(folder_.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
    return Status::Ok();
  }

 private:
  int fd_;
  std::string folder_;
};

}  // namespace

Result<std::unique_ptr<CheckpointMark>> FileStore::OpenMark(const std::string& id) {
  std::string path = RunFilePath(dir_, id, kMarkFile);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(fmt::format("cannot open {}: {}", path, Errno()));
  return std::unique_ptr<CheckpointMark>(new FileMark(fd, RunPath(dir_, id)));
}

Result<uint64_t> FileStore::ReadMark(const std::string& id) const {
  std::string bytes;
  if (IsPacked(id)) {  // the packed file is the run: a mark file beside it is left of a cut-short unpack
    Result<PackedRun> packed = ReadPacked(id);
    if (!packed.ok()) return packed.status();
    bytes = std::move(packed->mark);
  } else if (Status s = ReadFile(RunFilePath(dir_, id, kMarkFile), &bytes); !s.ok() && !s.IsNotFound()) {
    return s;
  }
  if (bytes.empty()) return Status::NotFound(fmt::format("the checkpoint mark of run {} is missing", id));
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() != 16 || Checksum(bytes.substr(0, 8)) != DecodeFixed64(p + 8))
    return Status::Corruption(fmt::format("the checkpoint mark of run {} is damaged", id));
  return DecodeFixed64(p);
}

uint64_t DirectoryBytes(const std::string& dir) {
  std::error_code ec;
  uint64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::end(it);
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      uint64_t size = it->file_size(size_ec);
      if (!size_ec) total += size;
    }
  }
  return total;
}

}  // namespace flow::store
