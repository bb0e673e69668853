// The index of packed runs (docs/checkpoint.md, "The index of packed runs"): one SQLite
// database for the whole store, with a row per packed run (its record, its folder's bytes,
// its origin record), so that listing a store of many idle runs reads one file instead of
// one folder per run.
//
// A row is a promise that the run is packed as the row says. The holder of a run's lock
// adds the row after packing it; whoever changes a packed run removes its row first,
// durably (an unpack, a poison mark, a deletion, a new run under the same id). A run with
// no row is read from its files: a lost row (a crash between a pack and its row, an index
// removed or damaged) costs time, never a wrong answer.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vm/base/status.h"

struct sqlite3;

namespace flow::store {

struct IndexedRun {
  std::string id;
  std::string record;       // the sealed run record (EncodeRunRecord)
  uint64_t disk_bytes = 0;  // bytes of the run's folder, packed
  std::string origin;       // runs/ID/origin's bytes, "" if none
};

class RunIndex {
 public:
  // Opens the index at `path`: NotFound if there is none and not `create`. An index that is
  // not one (damaged, another file) is Corruption; one of a newer schema, NotSupported.
  static Result<std::unique_ptr<RunIndex>> Open(const std::string& path, bool create);
  ~RunIndex();
  RunIndex(const RunIndex&) = delete;
  RunIndex& operator=(const RunIndex&) = delete;

  // A writer's turn: index.sqlite-writer flock'ed, held around opening the index for a
  // change, the change, closing it (which may copy its log in) and any Remove. Many
  // processes change the index at once (a worker's children, flow runs): SQLite alone
  // would have each poll for its lock; the kernel queues them. Without the file (a store
  // read only), SQLite's own lock serves.
  class WriterTurn {
   public:
    explicit WriterTurn(const std::string& index_path);
    ~WriterTurn();
    WriterTurn(const WriterTurn&) = delete;
    WriterTurn& operator=(const WriterTurn&) = delete;

   private:
    int fd_;
  };

  // Adds or replaces rows, in one transaction (a WriterTurn held).
  Status Put(const std::vector<IndexedRun>& rows);
  // Removes the run's row (if any), synced before it returns (a WriterTurn held).
  Status Forget(const std::string& id);
  // Every row, in id order, to `each` (its strings may be moved from).
  Status ForEach(const std::function<void(IndexedRun& row)>& each) const;

  // The index's files (the database and SQLite's WAL and shared-memory files): removed
  // together when the index is damaged, so that no row of it is trusted again (a
  // WriterTurn held, no connection of this process open).
  static Status Remove(const std::string& path);

 private:
  RunIndex(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  int log_frames_ = 0;  // pages in the log after this process's last commit
};

}  // namespace flow::store
