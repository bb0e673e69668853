// Durable execution: runs a program in the VM with every effect journaled to the run's
// database in the store, and resumes a run from its last checkpoint.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <memory>

#include "runtime/exit_codes.h"
#include "store/keys.h"
#include "store/store.h"
#include "vm/base/status.h"
#include "vm/bytecode/module.h"
#include "vm/vm.h"

namespace flow::runtime {

// Budgets as `flow run` and `flow resume` take them: 0 means none; the deadline is a
// duration from now, kept with the run as an absolute time on its clock. On resume, a
// budget given again replaces the run's.
struct BudgetOptions {
  uint64_t max_effects = 0;
  uint64_t max_instructions = 0;
  uint64_t max_tokens = 0;
  int64_t deadline_ms = 0;
  uint64_t max_memory = 0;  // bytes; 0: the default (not kept with the run)
};

struct StartOptions {
  std::string file;
  std::vector<std::pair<std::string, std::string>> args;
  std::string store_dir;
  std::string run_id;  // empty: a new sortable id
  bool sync = true;    // --durability sync (default) or async
  bool virtual_time = false;
  bool ephemeral = false;  // --ephemeral: no store, no checkpoints, no resume
  bool detach = false;     // --detach: every wait suspends the run (exit 75)
  BudgetOptions budgets;
};


// `flow run`: creates the run, runs it, prints its output; returns the exit code.
int StartRun(const StartOptions& options);
// `flow resume`: continues a run from its last checkpoint; returns the exit code.
int ResumeRun(const std::string& store_dir, const std::string& run_id, const BudgetOptions& budgets = {});
// `flow signal`: delivers NAME (with a JSON value) to the run's mailbox.
int SignalRun(const std::string& store_dir, const std::string& run_id, const std::string& name, const std::string& json);
// `flow cancel`: a suspended run ends as cancelled; a live one raises `cancelled`.
int CancelRun(const std::string& store_dir, const std::string& run_id);
// `flow worker`: resumes runs whose timers are due, whose signals came, whose process died.
int Worker(const std::string& store_dir, bool once);

// A run opened from the store: its record, code, database and VM as of its last
// checkpoint. The caller holds the run's lock.
struct LoadedRun {
  std::unique_ptr<VmHost> reading_host;  // OpenRunToRead's (outlives vm)
  store::RunRecord record;
  std::unique_ptr<Module> module;
  std::unique_ptr<store::RunDb> db;
  std::unique_ptr<VM> vm;
  uint64_t checkpoint = 0;
  int64_t checkpoint_ms = 0;
  int64_t virtual_now_ms = 0;
};
// Corruption if the database is behind what the run's record or mark say was done (see
// CheckStateIsCurrent) or holds no checkpoint at all. `read_only`: the database's files
// are not written (store::RunDb::Options).
Status LoadRun(store::Store& st, const std::string& id, VmHost* host, LoadedRun* out, bool read_only = false);
// For reading a run (flow inspect, history, trace, export): LoadRun read-only, with a host
// that needs no secret values (secrets show as ***). The caller holds the run's lock.
Status OpenRunToRead(store::Store& st, const std::string& id, LoadedRun* out);

// Checks, before an import writes anything, that an image's run resumes as a stored one
// would: its bytecode verifies, its checkpoint (among `entries`) restores, and it is as
// far along as its record and mark (0: none) say.
Status CheckImportedState(const store::RunRecord& record, std::string_view code,
                          const std::vector<std::pair<std::string_view, std::string_view>>& entries, uint64_t mark);

// Is a run's state as far along as its record and its mark say? A record of N effects
// with a checkpoint after fewer, or (sync runs) a mark ahead of the checkpoint or missing,
// means acknowledged checkpoints were lost: Corruption, never "go on from an older state".
Status CheckStateIsCurrent(const store::RunRecord& record, uint64_t checkpoint, uint64_t effects_done,
                           const Result<uint64_t>& mark);

// Prints `flow: CONTEXT: message` and returns the exit code for the Status (3 for damage).
int Fail(const Status& s, const std::string& context);

// Keys of a run's database: defined in store/keys.h (formats in docs/checkpoint.md).
using store::HistoryKey;
using store::kCancelKey;
using store::kStateKey;
using store::ObjectKey;

// One entry of a run's history: an effect, from intent to outcome.
struct HistoryEntry {
  // kInDoubt: it was in flight when the run stopped inside a `once` step, so it is not run
  // again and the step raised `in_doubt`. The values are on disk (docs/checkpoint.md,
  // "History entry"): do not change them.
  enum class State : uint8_t { kIntent = 1, kDone = 2, kRaised = 3, kInDoubt = 4 };
  uint64_t seq = 0;
  std::string effect;  // builtin name
  State state = State::kIntent;
  std::string idempotency_key;
  uint64_t args_digest = 0;
  uint64_t result_digest = 0;
  int64_t started_ms = 0;
  int64_t duration_us = 0;
  std::string args_preview;    // compact JSON, cut at 200 bytes
  std::string result_preview;  // the result, or `kind: message` of a raised error
  // While in flight: what a local effect (fs) recorded of the state it changes, so that
  // running it again first restores that state (EffectJournal::RecordPreState); empty
  // otherwise.
  std::string pre_state;
};
std::string EncodeHistoryEntry(const HistoryEntry& e);
void EncodeHistoryEntryInto(const HistoryEntry& e, std::string* out);  // reuses out's buffer
Status DecodeHistoryEntry(std::string_view bytes, HistoryEntry* e);

// The state record: which checkpoint, when, and the VM's header (docs/checkpoint.md, key `s`).
struct StateRecord {
  uint64_t checkpoint = 0;
  int64_t written_ms = 0;
  int64_t virtual_now_ms = 0;  // the run's clock under --virtual-time, else 0
  std::string vm_header;
};
// Restores `vm` from the state record `state_bytes` and the heap objects `get` fetches by
// key (a run's database, or an image's entries).
Status RestoreState(VM& vm, std::string_view state_bytes,
                    const std::function<Status(std::string_view key, std::string* value)>& get, StateRecord* state);
void EncodeStateRecordInto(uint64_t checkpoint, int64_t written_ms, int64_t virtual_now_ms, std::string_view vm_header,
                           std::string* out);
Status DecodeStateRecord(std::string_view bytes, StateRecord* r);

}  // namespace flow::runtime
