// Durable execution: runs a program in the VM with every effect journaled to the run's
// database in the store, and resumes a run from its last checkpoint.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <memory>

#include "store/keys.h"
#include "store/store.h"
#include "vm/base/status.h"
#include "vm/bytecode/module.h"
#include "vm/vm.h"

namespace leveldb {
class Env;
}

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

// Milliseconds since the epoch, on the wall clock.
int64_t WallMs();
// `s` with `context: ` before its message, of the same code.
Status InContext(const Status& s, const std::string& context);

struct StartOptions {
  std::string file;
  std::vector<std::pair<std::string, std::string>> args;
  std::string store_dir;
  std::string run_id;  // empty: a new sortable id
  bool sync = true;    // --durability sync (default) or async
  bool virtual_time = false;
  bool ephemeral = false;  // --ephemeral: no store, no checkpoints, no resume
  bool detach = false;     // --detach: every wait suspends the run (exit 75)
  uint32_t keep_checkpoints = store::kKeepDefault;  // --keep-checkpoints (store::RunRecord)
  BudgetOptions budgets;
  // The source text the program was compiled from, kept beside its bytecode in the store
  // (nullopt: started from a .flowc file, no source).
  std::optional<std::string> source;
  // flow rerun (runtime/rerun.h): the run it continues the work of; null for a new run.
  struct RerunOrigin* origin = nullptr;
};


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
  std::string args_preview;    // compact JSON, whole up to kHistoryValueCap (journal.h)
  std::string result_preview;  // the result, or `kind: message` of a raised error
  // While in flight: what a local effect (fs) recorded of the state it changes, so that
  // running it again first restores that state (EffectJournal::RecordPreState); empty
  // otherwise.
  std::string pre_state;
  // The task that ran it: its spawn path ("2.5"), "" for the top level.
  std::string task;
  // When it started, in µs since the epoch (started_ms to the microsecond): a trailing
  // field since issue 11; an entry written before has started_ms * 1000 here.
  int64_t started_us = 0;
};
// The uncaught error that ended a run, as data (vm/error_report.h; FormatErrorReport renders it).
using ErrorInfo = ErrorReport;

// Why `flow worker` resumes a run.
enum class WakeReason { kProcessDied, kTimerDue, kWaitTimedOut, kSignalArrived, kQueued };

struct ScheduleFiring;  // runtime/schedule.h

// How a command on a run ended. Runtime returns this and never prints: the cli turns it
// into messages and an exit code.
struct RunResult {
  std::string run_id;  // "" for --ephemeral
  // The run's record says it cannot take this command (resume: CanResume is false;
  // cancel: it has ended): nothing was done; `record` says how it ended.
  bool refused = false;
  // flow cancel: the run is live (another process holds it); it raises `cancelled` at
  // its next effect or wait, in that process.
  bool cancel_pending = false;
  // Resume: the run neither started nor went on, and is as it was, because its queue's
  // slots are all held (kQueueFull: record.queue) or it waits for the previous run of its
  // schedule to end (kWaitingForRun: record.after_run). A worker tries it again later.
  enum class Deferred : uint8_t { kNo, kQueueFull, kWaitingForRun };
  Deferred deferred = Deferred::kNo;
  bool executed = false;  // the VM ran; outcome says how it stopped
  RunOutcome outcome = RunOutcome::kCompleted;
  // Set once the run's output is flushed after an uncaught error (outcome kFailed).
  std::optional<ErrorInfo> error;
  // The run stopped because its output could not be written (the Status says why): that
  // print is not recorded as done.
  bool output_failed = false;
  store::RunRecord record;  // as the command last read or wrote it
  // The source the run's code was compiled from, as stored with it (nullopt: none stored),
  // for quoting the lines of a stack trace.
  std::optional<std::string> source;
  // The file `source` is the text of (the module's source_name).
  std::string source_file;
  // The files the code imports, with the hash of the text each was compiled from: a trace
  // quotes their lines from the file on disk while its hash is still that one.
  std::vector<ImportedFile> imports;
};

// Is the program file a run was started from as it was then? (flow resume, flow worker)
enum class ProgramFileState { kUnchanged, kChanged, kGone, kUnknown };

// The kind of error the VM raises when a run exceeds a budget (vm/guards.cc); a run
// stopped by one keeps its state.
inline constexpr char kBudgetErrorKind[] = "budget";

// Can `flow resume` continue this run? Suspended, running (its process died) and crashed
// runs can; so can a run stopped by a budget (its error kind is `budget`: it kept its
// state and may go on with a larger one). Decided from the record's fields, not its text.
bool CanResume(const store::RunRecord& record);

// What a command that executes runs reports while it works. The cli implements it: the
// program's output goes where the cli says, and each event becomes the cli's message.
class RunListener {
 public:
  virtual ~RunListener() = default;
  // The program's `print`, written as it prints (a killed process loses none of it). Not
  // ok: it was not written, and the print is not recorded as done.
  virtual Status WriteOutput(std::string_view text) = 0;
  // A log line of the program (log.info/warn/error), formatted as one line.
  virtual void WriteLog(std::string_view line) {}
  // Something the operator should know that does not stop the run (an unreachable trace
  // collector); may be called from another thread.
  virtual void Warning(std::string_view message) {}
  // A new run has its record and starts.
  virtual void RunStarted(const std::string& run_id) {}
  // A run continues from its last checkpoint. `in_flight.seq` != 0: that effect was in
  // flight when it stopped; `in_doubt`: inside a `once` step (it is not run again).
  virtual void RunResuming(const std::string& run_id, uint64_t checkpoint, const HistoryEntry& in_flight,
                           bool in_doubt) {}
  // flow fork: run `run_id` was made from `from` as it was after effect `effects`.
  virtual void RunForked(const std::string& from, uint64_t effects, const std::string& run_id) {}
  // A run resumes on its stored code, but its program file on disk has changed since it
  // started (kChanged) or is gone (kGone).
  // `file`: the program file, or the first file it imports that moved on.
  virtual void ProgramFileMoved(const store::RunRecord& record, ProgramFileState state, const std::string& file) {}
  // flow cancel: a run that is not live is resumed to raise `cancelled` where it stopped.
  virtual void RunCancelling(const std::string& run_id) {}
  // Is the process asked to end (SIGTERM: a worker draining)? Polled; a durable run then
  // suspends before its next effect, or at its wait, due at once (VmHost::StopRequested).
  virtual bool StopRequested() { return false; }
};

// `flow run`: creates the run for `program` (already loaded from options.file) and runs it.
Status StartRun(const StartOptions& options, const Module& program, RunListener* listener, RunResult* result);
// The second half of StartRun, for a run whose record is made (not yet written) and
// whose lock the caller holds: its database and first checkpoint, then its record, then
// it runs. Also starts a queued run (runtime/queue.cc). `code_lock`: released once the
// record names the code (may be null).
Status BeginRun(store::Store* st, store::RunRecord record, const Module& program, const StartOptions& options,
                std::unique_ptr<store::CodeLock> code_lock, RunListener* listener, RunResult* result);
// `flow resume`: continues a run from its last checkpoint; a queued run starts (from the
// beginning, with its stored arguments); not now if its queue is full (result->deferred).
Status ResumeRun(const std::string& store_dir, const std::string& run_id, const BudgetOptions& budgets,
                 RunListener* listener, RunResult* result);
// `flow fork`: a new run from the kept checkpoint right after effect `at_effect` of run
// `from` (its last if none), with variables set (`sets`: name, JSON), on the same bytecode
// and options, its origin in its record and its history up to there; then it runs.
struct ForkOptions {
  std::string store_dir;
  std::string from;
  std::optional<uint64_t> at_effect;
  std::string run_id;  // empty: a new sortable id
  std::vector<std::pair<std::string, std::string>> sets;
  BudgetOptions budgets;
};
Status ForkRun(const ForkOptions& options, RunListener* listener, RunResult* result);
// `flow signal`: appends NAME (with a JSON value) to the run's mailbox.
struct SignalSent {
  bool refused = false;     // the run has ended (record.status): nothing was sent
  store::RunRecord record;  // the run's record when it was sent
  uint64_t earlier = 0;     // how many signals of this name the mailbox held before it
  bool live = false;        // a process is running the run: live_pid
  int64_t live_pid = 0;
};
Status SignalRun(const std::string& store_dir, const std::string& run_id, const std::string& name,
                 const std::string& json, SignalSent* sent);
// `flow cancel`: a suspended run ends as cancelled; a live one raises `cancelled`.
Status CancelRun(const std::string& store_dir, const std::string& run_id, RunListener* listener, RunResult* result);
// Why a worker would resume this run now (its timer is due, its signal came, its process
// died, it is queued and its queue has room), if it would: none for a run a worker set
// aside (poisoned). `flow worker` is in
// runtime/worker.h.
Result<std::optional<WakeReason>> DueReason(store::Store& st, const store::RunRecord& record, int64_t now_ms);

// A run opened from the store: its record, code, database and VM as of its last
// checkpoint. The caller holds the run's lock.
struct LoadedRun {
  LoadedRun();
  ~LoadedRun();  // defined where leveldb::Env is complete
  LoadedRun(LoadedRun&&);
  LoadedRun& operator=(LoadedRun&&);
  std::unique_ptr<store::RunLock> lock;  // OpenRunForReading's hold on a run that is not live
  bool live = false;                     // read from a snapshot its live process sent
  std::unique_ptr<VmHost> reading_host;  // OpenRunToRead's (outlives vm)
  store::RunRecord record;
  std::unique_ptr<Module> module;
  std::unique_ptr<leveldb::Env> snapshot_env;  // holds a live run's snapshot (outlives db)
  std::unique_ptr<store::RunDb> db;
  std::unique_ptr<VM> vm;
  uint64_t checkpoint = 0;
  int64_t checkpoint_ms = 0;
  int64_t virtual_now_ms = 0;
  std::optional<std::string> source;  // the stored source of its code (nullopt: none)
};
// Compares the program file on disk with the code the run started with: its stored
// source (or, for a run started from bytecode, its stored bytecode), by content hash.
ProgramFileState CheckProgramFile(const store::RunRecord& record, const std::optional<std::string>& source);
// A file a program imports, on disk, against the hash of the text its code was compiled
// from (Module::imports): unchanged (its text in *text, if given), changed, gone, or
// unknown (it cannot be read).
ProgramFileState CheckImportedFile(const ImportedFile& file, std::string* text = nullptr);
// The program file, then each file `module` imports: the first that is changed or gone,
// named in *file.
ProgramFileState CheckProgramFiles(const store::RunRecord& record, const std::optional<std::string>& source,
                                   const Module& module, std::string* file);
// Corruption if the database is behind what the run's record or mark say was done (see
// CheckStateIsCurrent) or holds no checkpoint at all. `read_only`: the database's files
// are not written (store::RunDb::Options).
Status LoadRun(store::Store& st, const std::string& id, VmHost* host, LoadedRun* out, bool read_only = false);
// For reading a run (flow inspect, history, trace, export): LoadRun read-only, with a host
// that needs no secret values (secrets show as ***). The caller holds the run's lock.
// With `after_effect` N, the VM as of the first kept checkpoint after which the run had
// done N effects (FindCheckpointAfterEffect; its effects_done says if it is a later one,
// those in between being no longer kept); NotFound past the run's last effect.
Status OpenRunToRead(store::Store& st, const std::string& id, LoadedRun* out,
                     std::optional<uint64_t> after_effect = std::nullopt);
// The first kept checkpoint after which the run had done `effects` effects (the state
// "after effect N"), found by bisecting the kept checkpoints' headers; NotFound past the
// run's last effect. *effects_there: the effects done at the checkpoint found (more than
// `effects` if the ones in between are no longer kept).
Status FindCheckpointAfterEffect(store::RunDb& db, uint64_t effects, uint32_t* checkpoint, uint64_t* effects_there);

// For every reader of a run (flow inspect, history, trace, logs, export, ui): the run as
// OpenRunToRead gives it, holding its lock; or, while a process executes it, as of a
// snapshot that process sends (runtime/live.h; out->live). Refused as LockRun refuses if
// the run is held but does not answer.
Status OpenRunForReading(store::Store& st, const std::string& id, LoadedRun* out,
                         std::optional<uint64_t> after_effect = std::nullopt);

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

// Keys of a run's database: defined in store/keys.h (formats in docs/checkpoint.md).
using store::HistoryKey;
using store::kCancelKey;
using store::kStateKey;
using store::ObjectKey;

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
// base key (ObjectKey, ListChunkKey), as of the checkpoint restored: from a run's database
// (RunDb::GetAt), or an image's entries (FindVersion). With `get_strings_later`, strings
// are read through it when first used (VM::RestoreCheckpoint), and it must outlive `vm`.
Status RestoreState(VM& vm, std::string_view state_bytes,
                    const std::function<Status(std::string_view key, std::string* value)>& get, StateRecord* state,
                    std::function<Status(std::string_view key, std::string* value)> get_strings_later = {});
void EncodeStateRecordInto(uint64_t checkpoint, int64_t written_ms, int64_t virtual_now_ms, std::string_view vm_header,
                           std::string* out);
Status DecodeStateRecord(std::string_view bytes, StateRecord* r);

}  // namespace flow::runtime
