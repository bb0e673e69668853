// Listing the runs of a store: the ids of runs/, each read from the index of packed runs
// (store/run_index.h) if it has a row there, else from its folder. A store of 100,000 idle
// runs is then read from one file (docs/checkpoint.md, "The index of packed runs").
#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <string_view>

#include "store/keys.h"
#include "store/file_store.h"

namespace flow::store {

namespace {

// The ids of runs/, in order.
std::vector<std::string> RunIds(const std::string& runs_dir) {
  std::vector<std::string> ids;
  DIR* d = opendir(runs_dir.c_str());
  if (!d) return ids;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (IsValidRunId(name)) ids.push_back(name);
  }
  closedir(d);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Run `id`'s record from what reading it gave: a record naming another run is damage.
Result<RunRecord> RecordOfRun(const std::string& id, const Status& read, std::string_view bytes) {
  if (!read.ok()) return read;
  Result<RunRecord> r = DecodeRunRecord(bytes, fmt::format("the record of run {}", id));
  if (r.ok() && r->id != id) return Status::Corruption(fmt::format("the record of run {} is malformed", id));
  return r;
}

// How many runs IndexPackedRuns holds locked at once (one descriptor each): few, since
// whoever wants one of them meanwhile (a resume, a cancel) finds it held.
constexpr size_t kIndexBatch = 32;

}  // namespace

void FileStore::ForEachRun(const std::function<void(ListedRun& run)>& each,
                       const std::function<void(const std::string&, const Status&)>& unreadable, Status* index_status) const {
  // The ids first: a run created after this look is not listed, one removed after it is
  // passed over (NotFound), and a row without a folder (a folder removed by hand) is not a run.
  const std::vector<std::string> ids = RunIds(RunsPath(dir_));
  // The rows, in id order as the ids are: each row's id is met in `ids` or passed over; the
  // ids between rows are read from their folders.
  size_t next = 0;
  ListedRun entry;
  auto from_folders_until = [&](const std::string* id) {
    for (; next < ids.size() && (!id || ids[next] < *id); ++next) {
      const std::string& run = ids[next];
      std::string bytes;
      entry = ListedRun{};
      Status s = ReadRunRecordBytes(run, &bytes, &entry.packed_without_row);
      if (s.IsNotFound()) continue;  // a run still being created, or removed meanwhile
      Result<RunRecord> r = RecordOfRun(run, s, bytes);
      if (!r.ok()) {
        unreadable(run, r.status());
        continue;
      }
      entry.record = std::move(r.value());
      each(entry);
    }
  };
  Status read = Status::Ok();
  if (Result<std::unique_ptr<RunIndex>> index = RunIndex::Open(RunIndexPath(dir_), false); index.ok()) {
    // Rows are trusted one by one (each is a sealed record): if the index fails half-way,
    // the runs after are read from their folders.
    read = (*index)->ForEach([&](IndexedRun& row) {
      from_folders_until(&row.id);
      if (next == ids.size() || ids[next] != row.id) return;
      Result<RunRecord> r = DecodeRunRecord(row.record, "an indexed run record");
      if (!r.ok() || r->id != row.id) return;  // not trusted: its folder says
      entry = ListedRun{};
      entry.record = std::move(r.value());
      entry.indexed = true;
      entry.disk_bytes = row.disk_bytes;
      entry.origin = std::move(row.origin);
      each(entry);
      ++next;
    });
  } else if (!index.status().IsNotFound()) {
    read = index.status();
  }
  from_folders_until(nullptr);
  if (index_status) *index_status = read;
}

std::vector<ListedRun> FileStore::ListRunEntries(const std::function<void(const std::string&, const Status&)>& unreadable,
                                             Status* index_status) const {
  std::vector<ListedRun> out;
  ForEachRun([&](ListedRun& run) { out.push_back(std::move(run)); }, unreadable, index_status);
  return out;
}

std::vector<RunRecord> FileStore::ListRuns(const std::function<void(const std::string&, const Status&)>& unreadable) const {
  std::vector<RunRecord> out;
  for (ListedRun& entry : ListRunEntries(unreadable)) out.push_back(std::move(entry.record));
  return out;
}

std::vector<RunRecord> FileStore::ListRunsInFiles(const std::function<void(const std::string&, const Status&)>& unreadable) const {
  std::vector<RunRecord> out;
  for (const auto& id : RunIds(RunsPath(dir_))) {
    std::string bytes;
    Status s = ReadFile(RunFilePath(dir_, id, kRunRecordFile), &bytes);
    if (s.IsNotFound()) continue;  // packed, or still being created
    Result<RunRecord> r = RecordOfRun(id, s, bytes);
    if (r.ok())
      out.push_back(std::move(r.value()));
    else
      unreadable(id, r.status());
  }
  return out;
}

IndexedRun FileStore::RowOfPackedRun(const std::string& id, std::string record) const {
  IndexedRun row{id, std::move(record), DirectoryBytes(RunPath(dir_, id)), ""};
  if (Status s = ReadFile(RunFilePath(dir_, id, kOriginFile), &row.origin); !s.ok()) row.origin.clear();
  return row;
}

Status FileStore::IndexRows(const std::vector<IndexedRun>& rows) {
  if (rows.empty()) return Status::Ok();
  const std::string path = RunIndexPath(dir_);
  RunIndex::WriterTurn turn(path);  // held until the connection is closed and any removal done
  Status s;
  for (int attempt = 0; attempt < 2; ++attempt) {
    {
      Result<std::unique_ptr<RunIndex>> index = RunIndex::Open(path, true);
      s = index.ok() ? (*index)->Put(rows) : index.status();
    }
    if (!s.IsCorruption() || attempt > 0) return s;
    // Not an index any more: replaced by a new one. (One of a newer schema is left to its version.)
    if (Status removed = RunIndex::Remove(path); !removed.ok()) return removed;
  }
  return s;
}

Status FileStore::ForgetIndexedRun(const std::string& id) {
  const std::string path = RunIndexPath(dir_);
  RunIndex::WriterTurn turn(path);
  Status s;
  {
    Result<std::unique_ptr<RunIndex>> index = RunIndex::Open(path, false);
    s = index.ok() ? (*index)->Forget(id) : index.status();
  }
  if (s.IsNotFound()) return Status::Ok();  // no index: no row
  // A damaged index cannot say whether it holds the row, nor can one of a newer schema that
  // this version does not read: it goes whole, with its rows (a cache: rebuilt by listings).
  if (s.IsCorruption() || s.code() == Status::Code::kNotSupported) return RunIndex::Remove(path);
  return s;
}

Status FileStore::IndexPackedRuns(const std::vector<std::string>& ids) {
  for (size_t start = 0; start < ids.size(); start += kIndexBatch) {
    // Each run's lock is held until its row is in: no process unpacks it meanwhile.
    std::vector<std::unique_ptr<RunLock>> locks;
    std::vector<IndexedRun> rows;
    for (size_t i = start; i < std::min(ids.size(), start + kIndexBatch); ++i) {
      Result<std::unique_ptr<RunLock>> lock = LockRun(ids[i]);
      if (!lock.ok() || !IsPacked(ids[i]) || IsPoisoned(ids[i])) continue;  // a set-aside run is read from its folder
      Result<PackedRun> packed = ReadPacked(ids[i]);
      if (!packed.ok()) continue;
      locks.push_back(std::move(lock.value()));
      rows.push_back(RowOfPackedRun(ids[i], std::move(packed->record)));
    }
    if (Status s = IndexRows(rows); !s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace flow::store
