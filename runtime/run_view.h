// What a run looks like from outside, as data: the listing, one run's detail (its error
// with its stack and the source lines it cites), a page of its history, its state at a
// checkpoint. `flow ui` serves these as JSON; they print nothing and take no exit code.
//
// Each call opens what it reads and closes it before returning. fcntl locks belong to the
// process, not the thread: a caller with several threads serializes these calls (closing
// any descriptor of a lock file drops every lock the process holds on it).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/rerun.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "vm/base/status.h"
#include "vm/error_report.h"

namespace flow::runtime {

// A record says "running", but no process holds its lock: the process died (crashed), or
// crashed so often that a worker set it aside (poisoned).
store::RunStatus EffectiveStatus(const store::Store& st, const store::RunRecord& record, int64_t* live_pid);
// The same for a run as a listing found it: one from the index of packed runs is neither
// live nor set aside (its row would be gone), so its record's status is the answer.
store::RunStatus EffectiveStatus(const store::Store& st, const store::ListedRun& run, int64_t* live_pid);

struct RunSummary {
  store::RunRecord record;
  store::RunStatus status = store::RunStatus::kRunning;  // effective
  int64_t live_pid = 0;                                  // a process executes it now
};

struct RunList {
  std::vector<RunSummary> runs;                                // by id (sortable: by start time)
  std::vector<std::pair<std::string, std::string>> unreadable;  // id, why
};
// Every run of the store; a store that does not exist yet has none.
Status ListRunSummaries(const std::string& store_dir, RunList* out);

// One frame of an error's stack: "function (file:line)" read back; line 0 if it names none
// (a task's marker).
struct StackFrame {
  std::string text;
  std::string function;
  std::string file;
  uint32_t line = 0;
};

// The source of the code the run executes: the text stored beside its bytecode
// (code/HASH.flow), never the file on disk, which may have changed since the run started.
struct RunSource {
  std::string file;                 // the program file the run was started from
  bool available = false;           // a source is stored with the run's code
  std::string note;                 // why it is not available
  std::vector<std::string> lines;
  ProgramFileState file_on_disk = ProgramFileState::kUnknown;  // that file now, against the run's code
};

struct RunDetail {
  RunSummary summary;
  bool live = false;              // another process holds the run: its database is not read
  std::optional<ErrorReport> error;  // a failed or cancelled run's uncaught error
  bool error_has_stack = false;   // from the error record; else only the record's first line
  std::vector<StackFrame> stack;  // the error's, innermost first
  RunSource source;
  bool cancel_requested = false;
  std::optional<OriginRecord> origin;  // a fork's or a rerun's
};
// NotFound for an unknown run; InvalidArgument for an id that is not a run id.
Status ReadRunDetail(const std::string& store_dir, const std::string& id, RunDetail* out);

struct HistoryPage {
  int64_t live_pid = 0;  // != 0: a process executes the run, and its database was not read
  bool live = false;     // read while a process executes it: a snapshot it sent, or the database itself
  uint64_t total = 0;  // entries in the whole history, step events included
  uint64_t offset = 0;
  std::vector<HistoryEntry> entries;
};
// Entries [offset, offset + limit) of the run's history, step events among the effects
// they happened between (as `flow history` lists them).
Status ReadRunHistory(const std::string& store_dir, const std::string& id, uint64_t offset, uint64_t limit,
                      HistoryPage* out);

// A value as JSON text (secrets masked), cut at kMaxShownValueBytes.
struct ShownValue {
  std::string name;
  std::string json;
  bool truncated = false;
};
inline constexpr size_t kMaxShownValueBytes = 4096;

struct StateView {
  int64_t live_pid = 0;  // != 0: a process executes the run, and its state was not read
  bool live = false;     // read while a process executes it: a snapshot it sent, or the database itself
  uint64_t checkpoint = 0;
  uint64_t effects_done = 0;  // the state is the one after this many effects
  int64_t checkpoint_ms = 0;
  // ?at=N asked for the state after effect N, and the run no longer keeps that checkpoint
  // (--keep-checkpoints): the first kept one after it is shown, and `note` says so.
  bool at_not_kept = false;
  std::string note;
  struct Frame {
    std::string function;
    uint32_t pc = 0;
    uint32_t line = 0;
    std::vector<ShownValue> locals;
  };
  struct Task {
    std::string path;
    std::string state;
    std::string waits_for;
    int64_t wake_ms = 0;
    std::vector<Frame> frames;
  };
  std::vector<Frame> frames;  // the top level's, innermost first
  std::vector<ShownValue> globals;
  std::vector<Task> tasks;    // every task but the top level
  std::string top_level_state;
};
// The run's state right after effect `at` (nullopt: its last checkpoint); NotFound past
// its last effect.
Status ReadRunState(const std::string& store_dir, const std::string& id, std::optional<uint64_t> at,
                    StateView* out);

}  // namespace flow::runtime
