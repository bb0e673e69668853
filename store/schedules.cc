// Schedule records (store/schedules.h), and the folder store's schedules (store/file_store.h).
#include "store/schedules.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "store/keys.h"
#include "store/file_store.h"
#include "vm/base/record.h"

namespace flow::store {

namespace {

// schedule := a sealed record, version 1, of ScheduleRecord's fields in declaration order
// (docs/checkpoint.md, "Schedules").
constexpr uint8_t kScheduleVersion = 1;
constexpr size_t kMaxScheduleName = 40;

Status MakeSchedulesDir(const std::string& store_dir) {
  std::string dir = SchedulesPath(store_dir);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return Status::IOError(fmt::format("cannot create {}: {}", dir, std::strerror(errno)));
  return Status::Ok();
}

class FileScheduleLock final : public ScheduleLock {
 public:
  explicit FileScheduleLock(int fd) : fd_(fd) {}
  ~FileScheduleLock() override { close(fd_); }

 private:
  int fd_;
};

}  // namespace

const char* OverlapName(Overlap o) {
  switch (o) {
    case Overlap::kSkip: return "skip";
    case Overlap::kQueue: return "queue";
    case Overlap::kAllow: return "allow";
  }
  return "?";
}

bool ParseOverlap(std::string_view name, Overlap* out) {
  for (Overlap o : {Overlap::kSkip, Overlap::kQueue, Overlap::kAllow})
    if (name == OverlapName(o)) {
      *out = o;
      return true;
    }
  return false;
}

bool IsValidScheduleName(std::string_view name) { return name.size() <= kMaxScheduleName && IsValidRunId(name); }

Result<std::unique_ptr<ScheduleLock>> FileStore::LockSchedules() {
  if (Status s = MakeSchedulesDir(dir_); !s.ok()) return s;
  std::string path = SchedulesPath(dir_) + "/" + kScheduleLockFile;
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      close(fd);
      return Status::IOError(fmt::format("cannot lock {}: {}", path, std::strerror(errno)));
    }
  }
  return std::unique_ptr<ScheduleLock>(new FileScheduleLock(fd));
}

std::string EncodeSchedule(const ScheduleRecord& r) {
  std::string p;
  PutBytes(&p, r.name);
  PutBytes(&p, r.program);
  PutBytes(&p, r.code_hash);
  PutVarint(&p, r.args.size());
  for (const auto& [k, v] : r.args) {
    PutBytes(&p, k);
    PutBytes(&p, v);
  }
  PutBytes(&p, r.queue);
  PutFixed8(&p, static_cast<uint8_t>(r.overlap));
  PutFixed64(&p, static_cast<uint64_t>(r.every_ms));
  PutBytes(&p, r.cron);
  PutFixed8(&p, r.paused ? 1 : 0);
  PutFixed64(&p, static_cast<uint64_t>(r.start_ms));
  PutFixed64(&p, static_cast<uint64_t>(r.next_ms));
  PutFixed64(&p, static_cast<uint64_t>(r.last_tick_ms));
  PutBytes(&p, r.last_run_id);
  PutFixed64(&p, static_cast<uint64_t>(r.created_ms));
  PutBytes(&p, r.durability);
  PutFixed8(&p, r.virtual_time ? 1 : 0);
  PutVarint(&p, r.fired);
  PutVarint(&p, r.skipped);
  return SealRecord(kScheduleVersion, p);
}

Result<ScheduleRecord> DecodeSchedule(std::string_view bytes, const std::string& what) {
  std::string_view payload;
  if (Status s = OpenRecord(bytes, kScheduleVersion, what, &payload); !s.ok()) return s;
  Reader rd(payload);
  ScheduleRecord r;
  r.name = std::string(rd.Bytes());
  r.program = std::string(rd.Bytes());
  r.code_hash = std::string(rd.Bytes());
  uint64_t n = rd.Varint();
  for (uint64_t i = 0; i < n && !rd.failed(); ++i) {
    std::string k(rd.Bytes());
    r.args.emplace_back(k, std::string(rd.Bytes()));
  }
  r.queue = std::string(rd.Bytes());
  uint8_t overlap = rd.U8();
  r.every_ms = static_cast<int64_t>(rd.U64());
  r.cron = std::string(rd.Bytes());
  r.paused = rd.U8() != 0;
  r.start_ms = static_cast<int64_t>(rd.U64());
  r.next_ms = static_cast<int64_t>(rd.U64());
  r.last_tick_ms = static_cast<int64_t>(rd.U64());
  r.last_run_id = std::string(rd.Bytes());
  r.created_ms = static_cast<int64_t>(rd.U64());
  r.durability = std::string(rd.Bytes());
  r.virtual_time = rd.U8() != 0;
  r.fired = rd.Varint();
  r.skipped = rd.Varint();
  if (rd.failed() || !rd.at_end() || overlap > static_cast<uint8_t>(Overlap::kAllow) || !IsValidScheduleName(r.name) ||
      !IsValidCodeHash(r.code_hash) || (r.every_ms <= 0) == r.cron.empty())
    return Status::Corruption(what + " is malformed");
  r.overlap = static_cast<Overlap>(overlap);
  return r;
}

Result<ScheduleRecord> DecodeNamedSchedule(std::string_view bytes, const std::string& name) {
  Result<ScheduleRecord> r = DecodeSchedule(bytes, "the record of schedule " + name);
  if (r.ok() && r->name != name) return Status::Corruption(fmt::format("the record of schedule {} is malformed", name));
  return r;
}

Status FileStore::WriteSchedule(const ScheduleRecord& record) {
  if (Status s = MakeSchedulesDir(dir_); !s.ok()) return s;
  return WriteFileAtomically(SchedulePath(dir_, record.name), EncodeSchedule(record));
}

Result<ScheduleRecord> FileStore::ReadSchedule(const std::string& name) const {
  std::ifstream in(SchedulePath(dir_, name), std::ios::binary);
  if (!in) return Status::NotFound(fmt::format("no schedule {} in the store {}", name, dir_));
  std::ostringstream buf;
  buf << in.rdbuf();
  return DecodeNamedSchedule(buf.str(), name);
}

Status FileStore::DeleteSchedule(const std::string& name) {
  if (unlink(SchedulePath(dir_, name).c_str()) == 0) return Status::Ok();
  if (errno == ENOENT) return Status::NotFound(fmt::format("no schedule {} in the store {}", name, dir_));
  return Status::IOError(fmt::format("cannot remove schedule {}: {}", name, std::strerror(errno)));
}

std::vector<ScheduleRecord> FileStore::ListSchedules(
    const std::function<void(const std::string&, const Status&)>& unreadable) const {
  std::vector<std::string> names;
  if (DIR* d = opendir(SchedulesPath(dir_).c_str())) {
    while (dirent* e = readdir(d))
      // (NAME.tmp.PID: a write that died before its rename)
      if (IsValidScheduleName(e->d_name) && std::string_view(e->d_name).find(".tmp.") == std::string_view::npos) names.push_back(e->d_name);
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  std::vector<ScheduleRecord> out;
  for (const std::string& name : names) {
    Result<ScheduleRecord> r = ReadSchedule(name);
    if (r.ok()) out.push_back(std::move(r.value()));
    else if (!r.status().IsNotFound()) unreadable(name, r.status());
  }
  return out;
}

}  // namespace flow::store
