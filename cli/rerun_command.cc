// flow rerun, and what resume says of a program file that moved on (docs/operating.md).
#include <fmt/format.h>

#include "cli/commands.h"
#include "runtime/program_file.h"
#include "runtime/rerun.h"

namespace flow::cli {

void PrintProgramFileMoved(const store::RunRecord& r, runtime::ProgramFileState state, const std::string& file) {
  if (state == runtime::ProgramFileState::kChanged)
    fmt::print(stderr,
               "flow: run {}: {} has changed since the run started; the run continues on its stored code "
               "(flow rerun {} --code {} moves to the new code)\n",
               r.id, Printable(file), r.id, Printable(r.program));
  else if (state == runtime::ProgramFileState::kGone)
    fmt::print(stderr, "flow: run {}: {} is no longer on disk; the run continues on its stored code\n", r.id,
               Printable(file));
}

namespace {

// flow run's listener, which also says, as the new run starts, what it takes over.
class RerunListener : public runtime::RunListener {
 public:
  RerunListener(runtime::RunListener* inner, const runtime::RerunOrigin* origin) : inner_(inner), origin_(origin) {}
  Status WriteOutput(std::string_view text) override { return inner_->WriteOutput(text); }
  void RunStarted(const std::string& id) override {
    inner_->RunStarted(id);
    std::string reused;
    for (const auto& key : origin_->reused) reused += (reused.empty() ? "" : ", ") + Printable(key);
    fmt::print(stderr, "flow: run {} reruns run {}: {} completed step(s) reused{}{}\n", id, origin_->run_id,
               origin_->reused.size(), reused.empty() ? "" : " (" + reused + ")", reused.empty() ? "" : ", not run again");
    for (const auto& [key, why] : origin_->not_reused)
      fmt::print(stderr, "flow: step \"{}\" runs again: {} (it cannot move to a new run)\n", Printable(key), why);
    for (const auto& key : origin_->in_doubt)
      fmt::print(stderr, "flow: `once` step \"{}\" stays in doubt: it raises in_doubt, as it did\n", Printable(key));
  }

 private:
  runtime::RunListener* inner_;
  const runtime::RerunOrigin* origin_;
};

}  // namespace

int RerunCommand(const std::string& store, const std::string& run_id, const std::string& code_file,
                 const std::string& new_run_id) {
  runtime::RerunOptions options;
  options.store_dir = store;
  options.run_id = run_id;
  options.new_run_id = new_run_id;
  Module module;
  if (!code_file.empty()) {
    // Compiled fresh: no cache between the fix and the run.
    if (int code = LoadProgramOrSay(code_file, &module, nullptr, &options.code_source); code != kExitOk) return code;
    options.code = &module;
    options.code_file = runtime::AbsolutePath(code_file);
  }
  std::unique_ptr<runtime::RunListener> inner = NewProcessListener();
  runtime::RerunOrigin origin;
  RerunListener listener(inner.get(), &origin);
  runtime::RunResult result;
  Status s = runtime::RerunRun(options, &listener, &origin, &result);
  if (!s.ok() && !result.executed) return Fail(s, "rerun " + run_id);
  return ReportRunResult(s, result);
}

}  // namespace flow::cli
