// The commands `flow ui` starts on runs (resume, cancel): each a child process of this
// binary (`flow resume RUN --store DIR`), in a session of its own, so that a long resume
// never holds a server thread and outlives the server if it is stopped. A thread per
// child collects its output (the last kMaxOutput bytes) and its exit code.
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
  std::string output;  // its stdout and stderr together
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
  void Collect(uint64_t id, int pid, int fd);
  std::string flow_binary_;
  mutable std::mutex mu_;
  std::map<uint64_t, Action> actions_;
  uint64_t next_id_ = 1;
};

}  // namespace flow::ui
