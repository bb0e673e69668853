// flow rerun: a new run of a run's program (its stored code, or new code) with its
// arguments, in which every step the old run completed returns its stored value without
// running (docs/operating.md). Its origin is kept in runs/ID/origin and its history.
#pragma once
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/runtime.h"

namespace flow::runtime {

class StoreJournal;

// What a rerun starts from, given to StartRun (StartOptions::origin).
struct RerunOrigin {
  std::string run_id;        // the run reran
  std::string step_key_run;  // whose id names step effects' idempotency keys (the first of a chain of reruns)
  // Puts the old run's completed steps (and `once` steps in doubt) into the new VM, before
  // its first checkpoint; fills `reused` and `not_reused`.
  std::function<Status(VM& vm)> seed;
  std::vector<std::string> reused;                               // step keys
  std::vector<std::pair<std::string, std::string>> not_reused;  // step key, why (runs again)
  std::vector<std::string> in_doubt;                             // `once` steps still in doubt
};

// The origin record of a rerun (runs/ID/origin; docs/checkpoint.md, "The origin of a rerun").
struct OriginRecord {
  std::string kind = "rerun";  // or "fork"
  std::string origin_run;
  std::string step_key_run;
  std::vector<std::string> reused;
  uint64_t origin_effect = 0;  // a fork: the effect of origin_run it was made after
};
Status WriteOriginRecord(store::Store& st, const std::string& id, const OriginRecord& r);
// NotFound if the run has none (it is not a rerun).
Status ReadOriginRecord(const store::Store& st, const std::string& id, OriginRecord* r);
// The record from its bytes (runs/ID/origin's, or the index's copy of them).
Status DecodeOriginRecord(std::string_view bytes, const std::string& id, OriginRecord* r);

// Called by StartRun for a new rerun, before its first checkpoint: seeds the VM, writes the
// origin record and the history's "rerun" event, and sets the journal's keys.
Status StartRerun(store::Store& st, const std::string& id, const std::string& code_hash, RerunOrigin& origin, VM& vm,
                  StoreJournal& journal);
// Called when a run ends (completed or failed), before the journal's last Flush: keeps the
// steps it completed, as data (key `f`, written by that Flush with the last step events),
// for a rerun: a step completed after the run's last effect is in no checkpoint.
void RecordEndSteps(VM& vm, StoreJournal& journal);
// Called by ContinueRun: a resumed rerun keeps its keys, and reports reused steps not yet reported.
Status ContinueRerun(store::Store& st, const std::string& id, store::RunDb& db, StoreJournal& journal);

struct RerunOptions {
  std::string store_dir;
  std::string run_id;      // the old run
  std::string new_run_id;  // "" : a new sortable id
  // --code FILE: the module compiled fresh from it, and its source (nullopt for a .flowc);
  // null: the old run's stored code.
  const Module* code = nullptr;
  std::string code_file;
  std::optional<std::string> code_source;
};
// Refuses (InvalidArgument) a live run. `origin` tells what was reused, once the run started.
Status RerunRun(const RerunOptions& options, RunListener* listener, RerunOrigin* origin, RunResult* result);

}  // namespace flow::runtime
