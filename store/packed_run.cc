// Packed runs: an idle run's record, mark and database in one file, runs/ID/packed
// (docs/checkpoint.md, "Packed runs"). A suspended run of a small program otherwise takes
// seven disk blocks (its folder, the record, the mark, the database folder and its CURRENT,
// MANIFEST and log); packed it takes two (its folder and this file), and `flow runs` reads
// one file per run either way.
//
//   packed := record(version 1, payload)              (vm/base/record.h: version, XXH3-64)
//   payload := run_record:bytes  mark:bytes  file_count:varint  (name:bytes  content:bytes)*
//
// Each step leaves the run whole in one form: a pack writes the packed file (synced) before
// it removes the record, and the record's removal is synced before the database goes; an
// unpack writes the database, mark and record (synced) before it removes the packed file.
// So while runs/ID/run exists the folder is the run, and a packed file beside it is a copy
// left by a step cut short; once the record is gone, the packed file is the run.
#include <dirent.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "store/keys.h"
#include "store/file_store.h"
#include "vm/base/coding.h"
#include "vm/base/record.h"

namespace flow::store {

namespace {

constexpr uint8_t kPackedVersion = 1;
// LevelDB's lock file: empty, and made again by the next open.
constexpr char kLevelDbLockFile[] = "LOCK";

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// The regular files of a run's database folder, with their bytes; *total: their size.
Status ReadDbFiles(const std::string& db_dir, std::vector<std::pair<std::string, std::string>>* files, uint64_t* total) {
  DIR* d = opendir(db_dir.c_str());
  if (!d) return Status::IOError(fmt::format("cannot read {}: {}", db_dir, std::strerror(errno)));
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == kLevelDbLockFile) continue;
    names.push_back(std::move(name));
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  *total = 0;
  for (std::string& name : names) {
    std::string bytes;
    if (Status s = ReadFile(db_dir + "/" + name, &bytes); !s.ok()) return s;
    *total += bytes.size();
    files->emplace_back(std::move(name), std::move(bytes));
  }
  return Status::Ok();
}

// Removes a packed file whose run is whole in its folder (a copy): it must go before
// anything writes the record again, or readers, who read it first, would read the past.
Status RemovePackedCopy(const std::string& path) {
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::IOError(fmt::format("cannot remove {}: {}", path, std::strerror(errno)));
  return Status::Ok();
}

}  // namespace

std::string EncodePackedRun(const PackedRun& run) {
  std::string payload;
  PutBytes(&payload, run.record);
  PutBytes(&payload, run.mark);
  PutVarint(&payload, run.db_files.size());
  for (const auto& [name, bytes] : run.db_files) {
    PutBytes(&payload, name);
    PutBytes(&payload, bytes);
  }
  return SealRecord(kPackedVersion, payload);
}

bool FileStore::IsPacked(const std::string& id) const {
  return !Exists(RunFilePath(dir_, id, kRunRecordFile)) && Exists(RunFilePath(dir_, id, kPackedFile));
}

Status FileStore::ReadRunRecordBytes(const std::string& id, std::string* bytes, bool* from_packed) const {
  if (from_packed) *from_packed = false;
  // The packed file first: an idle run (most runs of a big store) is read with one open.
  // A packed file beside a record holds that same record (a pack copies it; an unpack
  // removes the packed file before anything writes the record again). At every moment one
  // of the two exists, but a pack may come between the two reads (the packed file
  // appears, then the record goes): then the packed file is there on a second look.
  for (int look = 0; look < 2; ++look) {
    Result<PackedRun> packed = ReadPacked(id);
    if (packed.ok()) {
      *bytes = std::move(packed->record);
      if (from_packed) *from_packed = true;
      return Status::Ok();
    }
    Status s = ReadFile(RunFilePath(dir_, id, kRunRecordFile), bytes);
    // A damaged packed file beside a record is a copy (the folder is the run): the record.
    if (!packed.status().IsNotFound()) return s.ok() ? s : packed.status();
    if (!s.IsNotFound()) return s;
  }
  return Status::NotFound(fmt::format("no run {} in the store {}", id, dir_));
}

Result<PackedRun> FileStore::ReadPacked(const std::string& id) const {
  std::string bytes;
  if (Status s = ReadFile(RunFilePath(dir_, id, kPackedFile), &bytes); !s.ok()) return s;
  return DecodePackedRun(bytes, fmt::format("the packed run {}", id));
}

Result<PackedRun> DecodePackedRun(std::string_view bytes, const std::string& what) {
  std::string_view payload;
  if (Status s = OpenRecord(bytes, kPackedVersion, what, &payload); !s.ok()) return s;
  Reader r(payload);
  PackedRun out;
  out.record = std::string(r.Bytes());
  out.mark = std::string(r.Bytes());
  uint64_t n = r.Varint();
  for (uint64_t i = 0; i < n && !r.failed(); ++i) {
    std::string name(r.Bytes());
    // A name is one file of the database folder, never a path out of it.
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      return Status::Corruption(what + " is malformed");
    }
    out.db_files.emplace_back(std::move(name), std::string(r.Bytes()));
  }
  if (r.failed() || !r.at_end()) return Status::Corruption(what + " is malformed");
  return out;
}

Result<std::unique_ptr<RunDb>> FileStore::OpenRunDbToRead(const std::string& id) const {
  if (!IsPacked(id)) return RunDb::Open(RunDbDir(id), {.read_only = true});
  Result<PackedRun> packed = ReadPacked(id);
  if (!packed.ok()) return packed.status();
  return RunDb::Open(RunDbDir(id), {.read_only = true, .files = &packed->db_files});
}

namespace {
bool rows_left_to_parent = false;
}  // namespace

void Store::LeaveIndexRowsToParent() { rows_left_to_parent = true; }

Status FileStore::PackRun(const std::string& id, uint64_t max_bytes) {
  const std::string folder = RunPath(dir_, id), record_path = RunFilePath(dir_, id, kRunRecordFile);
  PackedRun run;
  if (Status s = ReadFile(record_path, &run.record); !s.ok()) {
    if (s.IsNotFound() && Exists(RunFilePath(dir_, id, kPackedFile))) return Status::Ok();  // packed already
    return s;
  }
  Status mark = ReadFile(RunFilePath(dir_, id, kMarkFile), &run.mark);
  if (!mark.ok() && !mark.IsNotFound()) return mark;
  uint64_t total = 0;
  if (Status s = ReadDbFiles(RunDbDir(id), &run.db_files, &total); !s.ok()) return s;
  total += run.record.size() + run.mark.size();
  if (total > max_bytes)
    return Status::InvalidArgument(fmt::format("run {} takes {} bytes, more than {} packed", id, total, max_bytes));
  if (Status s = WriteFileAtomically(RunFilePath(dir_, id, kPackedFile), EncodePackedRun(run)); !s.ok()) return s;
  // From here the packed file is the run: its record goes first, durably, so that no crash
  // leaves a record beside a database that is partly removed.
  if (unlink(record_path.c_str()) != 0)
    return Status::IOError(fmt::format("cannot remove {}: {}", record_path, std::strerror(errno)));
  if (Status s = SyncDir(folder); !s.ok()) return s;
  unlink(RunFilePath(dir_, id, kMarkFile).c_str());
  std::error_code ec;
  std::filesystem::remove_all(RunDbDir(id), ec);  // what stays is removed by the next unpack
  // Its row last, the pack done: a listing reads it from the index from now on. A row not
  // written (a full disk, a crash here) leaves the run to be read from its folder.
  if (!rows_left_to_parent) (void)IndexRows({RowOfPackedRun(id, std::move(run.record))});
  // A run set aside meanwhile (a worker's mark, written without the lock) has no row.
  if (IsPoisoned(id)) return ForgetIndexedRun(id);
  return Status::Ok();
}

Status FileStore::UnpackRun(const std::string& id) {
  const std::string folder = RunPath(dir_, id), packed_path = RunFilePath(dir_, id, kPackedFile);
  if (!Exists(packed_path)) return Status::Ok();  // not packed: no row either (a row comes after its packed file)
  // The row first, durably: from the first write on, the run is no longer as the row says.
  if (Status s = ForgetIndexedRun(id); !s.ok()) return s;
  if (Exists(RunFilePath(dir_, id, kRunRecordFile))) return RemovePackedCopy(packed_path);
  Result<PackedRun> run = ReadPacked(id);
  if (run.status().IsNotFound()) return Status::Ok();
  if (!run.ok()) return run.status();
  const std::string db_dir = RunDbDir(id);
  std::error_code ec;
  std::filesystem::remove_all(db_dir, ec);  // left by a pack or an unpack cut short
  if (ec) return Status::IOError(fmt::format("cannot clear {}: {}", db_dir, ec.message()));
  if (mkdir(db_dir.c_str(), 0755) != 0)
    return Status::IOError(fmt::format("cannot create {}: {}", db_dir, std::strerror(errno)));
  for (const auto& [name, bytes] : run->db_files)
    if (Status s = WriteFileSynced(db_dir + "/" + name, bytes); !s.ok()) return s;
  if (Status s = SyncDir(db_dir); !s.ok()) return s;
  const std::string mark_path = RunFilePath(dir_, id, kMarkFile);
  if (run->mark.empty()) {
    unlink(mark_path.c_str());
  } else if (Status s = WriteFileSynced(mark_path, run->mark); !s.ok()) {
    return s;
  }
  if (Status s = SyncDir(folder); !s.ok()) return s;  // the entries of db/ and the mark
  // The record last: from then on the folder is the run, and the packed file can go.
  if (Status s = WriteFileAtomically(RunFilePath(dir_, id, kRunRecordFile), run->record); !s.ok()) return s;
  return RemovePackedCopy(packed_path);
}

}  // namespace flow::store
