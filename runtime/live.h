// Live runs: while a process executes a run, readers in other processes (flow inspect,
// history, trace, logs, export, runs, ui) ask it over a unix socket (in the abstract
// namespace, named after the run's folder) for a consistent snapshot of the run's database, which they read as
// they read a stopped run's (docs/checkpoint.md, "Live runs"). The answer comes from a
// thread of its own reading a LevelDB snapshot: the run is never paused.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "store/store.h"
#include "vm/base/status.h"

namespace leveldb {
class Env;
}

namespace flow::runtime {

// What a live run says of itself at once (flow runs).
struct LiveProgress {
  uint64_t effects = 0;
  uint64_t checkpoint = 0;
};

// In the process that executes a run: serves its database while it runs.
class LiveServer {
 public:
  // Serves `db` of the run in folder `run_dir`; progress is read from `effects` and
  // `checkpoint` (updated by the journal after each checkpoint). A socket that cannot be
  // made leaves the run unobservable, never stops it.
  LiveServer(const std::string& run_dir, store::RunDb* db, const std::atomic<uint64_t>* effects,
             const std::atomic<uint64_t>* checkpoint);
  ~LiveServer();  // stops answering and removes the socket
  LiveServer(const LiveServer&) = delete;
  LiveServer& operator=(const LiveServer&) = delete;

 private:
  void Serve();
  void Answer(int fd);
  store::RunDb* db_;
  const std::atomic<uint64_t>* effects_;
  const std::atomic<uint64_t>* checkpoint_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
};

// In a reader: asks the live process of the run in `run_dir`, `pid` (the holder of its
// lock), how far it is. NotFound if that process does not answer.
Status AskLiveProgress(const std::string& run_dir, int64_t pid, LiveProgress* out);
// How far a running run is: asked of its process `pid` (AskLiveProgress), or read from
// its last checkpoint in a store readable while the run is live (Store::ReadableWhileLive).
// In runtime/runtime.cc, beside the reading of checkpoints.
Status ReadRunProgress(store::Store& st, const std::string& id, int64_t pid, LiveProgress* out);

// In a reader: a copy of the live run's database (keys starting with one of `prefixes`,
// "" for all) from its process `pid`, as a database in memory (`env` holds it and must
// outlive `db`). NotFound if that process does not answer; Corruption if the answer is damaged.
Status TakeLiveSnapshot(const std::string& run_dir, int64_t pid, const std::string& prefixes,
                        std::unique_ptr<leveldb::Env>* env, std::unique_ptr<store::RunDb>* db);

}  // namespace flow::runtime
