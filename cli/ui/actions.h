// The commands `flow ui` starts on runs (resume, cancel): each a child process of this
// binary (`flow resume RUN --store DIR`), in a session of its own, so that a long resume
// never holds a server thread and outlives the server if it is stopped. Its output goes to
// an unnamed temporary file, not a pipe: a run whose server is gone must not fail its next
// print on a broken pipe. A thread per child waits for its exit code.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vm/base/status.h"

namespace flow::ui {

struct Action {
  uint64_t id = 0;
  std::string command;  // resume, cancel
  std::string run_id;
  int64_t pid = 0;
  int64_t started_ms = 0;
  bool done = false;
  int exit_code = -1;  // once done: the child's exit code (128 + N if a signal N ended it)
  std::string output;  // its stdout and stderr together: the last kMaxOutput bytes
};

class Actions {
 public:
  // `flow_binary`: this binary's path, read once at start (/proc/self/exe).
  explicit Actions(std::string flow_binary) : flow_binary_(std::move(flow_binary)) {}
  // Starts `flow ARGS...`; the child gets this environment without `drop_env` (the UI's token).
  Result<uint64_t> Start(const std::string& command, const std::string& run_id, const std::vector<std::string>& args,
                         const std::string& drop_env);
  std::optional<Action> Get(uint64_t id) const;
  std::vector<Action> List() const;

  static constexpr size_t kMaxOutput = 64 << 10;

 private:
  void Wait(uint64_t id, int pid);
  std::string flow_binary_;
  mutable std::mutex mu_;
  std::map<uint64_t, Action> actions_;
  std::map<uint64_t, int> output_fds_;  // each action's output file
  static constexpr size_t kMaxActions = 1000;  // then the oldest finished ones are forgotten
  uint64_t next_id_ = 1;
};

}  // namespace flow::ui
