// Retention: a run's size on disk, deleting a run, and removing code no run names
// (flow runs, flow delete, flow gc; docs/checkpoint.md, "Retention").
#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <set>

#include "store/keys.h"
#include "store/schedules.h"
#include "store/file_store.h"

namespace flow::store {

namespace {

namespace fs = std::filesystem;

uint64_t FileBytes(const std::string& path) {
  std::error_code ec;
  uint64_t size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

// The hash of a file name in code/ (HASH.flowc or HASH.flow), or "" for another name.
std::string HashOfCodeFile(const std::string& name) {
  for (std::string_view suffix : {std::string_view(kCodeSuffix), std::string_view(kSourceSuffix)}) {
    if (name.size() == 32 + suffix.size() && name.ends_with(suffix) && IsValidCodeHash(name.substr(0, 32)))
      return name.substr(0, 32);
  }
  return "";
}

}  // namespace

uint64_t FileStore::RunDiskBytes(const std::string& id) const { return DirectoryBytes(RunPath(dir_, id)); }

Status FileStore::DeleteRun(const std::string& id, uint64_t* freed) {
  *freed = 0;
  if (!IsValidRunId(id)) return Status::InvalidArgument(fmt::format("`{}` is not a run id", id));
  if (!RunExists(id) && !fs::exists(RunPath(dir_, id))) return Status::NotFound(fmt::format("no run {} in the store {}", id, dir_));
  // Held while the folder is renamed: no process can be executing or reading it then, and
  // after the rename none can find it.
  Result<std::unique_ptr<RunLock>> lock = LockRun(id);
  if (!lock.ok())
    return Status::InvalidArgument(lock.status().message() + "; a live run is not deleted (flow cancel it, or wait for it to stop)");
  // Its row first: a row left behind would speak for a later run of the same id.
  if (Status s = ForgetIndexedRun(id); !s.ok()) return s;
  *freed = RunDiskBytes(id);
  // A hidden name (runs/.deleted-ID-PID): not a run id, so never listed or opened as one.
  std::string doomed = fmt::format("{}/.deleted-{}-{}", RunsPath(dir_), id, getpid());
  if (std::rename(RunPath(dir_, id).c_str(), doomed.c_str()) != 0)
    return Status::IOError(fmt::format("cannot remove run {}: {}", id, std::strerror(errno)));
  lock->reset();
  std::error_code ec;
  fs::remove_all(doomed, ec);
  if (ec) return Status::IOError(fmt::format("run {} is gone, but {} is left: {}", id, doomed, ec.message()));
  std::string mailbox = SharedFilePath(dir_, MailboxName(id));
  *freed += FileBytes(mailbox);
  fs::remove(mailbox, ec);
  return Status::Ok();
}

Status FileStore::CollectCode(bool dry_run, const std::vector<std::string>& going, std::vector<std::string>* removed,
                          uint64_t* freed) {
  removed->clear();
  *freed = 0;
  // Exclusive: no start, import or rerun is between storing its code and writing its record.
  Result<std::unique_ptr<CodeLock>> lock = LockCode(true);
  if (!lock.ok()) return lock.status();
  std::set<std::string> named;
  bool unreadable = false;
  for (const RunRecord& r : ListRuns([&](const std::string&, const Status&) { unreadable = true; }))
    if (!dry_run || std::find(going.begin(), going.end(), r.id) == going.end()) named.insert(r.code_hash);
  // A schedule's code is used by the runs it will submit (store/schedules.h).
  for (const ScheduleRecord& s : ListSchedules([&](const std::string&, const Status&) { unreadable = true; }))
    named.insert(s.code_hash);
  // A record that cannot be read may name any code: keep all of it.
  if (unreadable) return Status::Ok();
  std::set<std::string> doomed;
  std::string code_dir = dir_ + "/" + kCodeDir;
  std::error_code ec;
  for (fs::directory_iterator it(code_dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string hash = HashOfCodeFile(it->path().filename().string());
    if (hash.empty() || named.count(hash)) continue;
    doomed.insert(hash);
  }
  for (const std::string& hash : doomed) {
    for (const std::string& path : {CodePath(dir_, hash), SourcePath(dir_, hash)}) {
      uint64_t size = FileBytes(path);
      if (!dry_run && !fs::remove(path, ec)) continue;
      *freed += size;
    }
    removed->push_back(hash);
  }
  return Status::Ok();
}

}  // namespace flow::store
