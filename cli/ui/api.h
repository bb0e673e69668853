// The JSON API of `flow ui` under /api/ (docs/ui.md, "The API"): the run data of
// runtime/run_view.h as JSON, and the actions on runs. It serves the pages and scripts
// alike; security (token, cross-site checks) is the server's, before a request gets here.
#pragma once
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cli/ui/actions.h"
#include "runtime/run_view.h"

namespace flow::ui {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct ApiRequest {
  std::string method;
  std::string path;                          // "/api/runs/ID/state", decoded
  std::map<std::string, std::string> query;  // decoded
  std::string body;
};

class Api {
 public:
  // `token_env`: the variable that holds the UI's token, kept from the commands it starts.
  Api(std::string store_dir, Actions* actions, std::string token_env)
      : store_dir_(std::move(store_dir)), actions_(actions), token_env_(std::move(token_env)) {}
  HttpResponse Handle(const ApiRequest& request);

 private:
  HttpResponse Runs(const ApiRequest& request);
  HttpResponse Run(const std::string& id);
  HttpResponse Source(const std::string& id);
  HttpResponse History(const std::string& id, const ApiRequest& request);
  HttpResponse State(const std::string& id, const ApiRequest& request);
  HttpResponse Signal(const std::string& id, const ApiRequest& request);
  // `flow ARGS... --store DIR` as an action (cli/ui/actions.h).
  // `new_run`: the id of the run it makes (fork, rerun), named in the answer.
  HttpResponse StartCommand(const std::string& id, const std::string& command, std::vector<std::string> args,
                            const std::string& new_run = "");
  HttpResponse Fork(const std::string& id, const ApiRequest& request);
  HttpResponse Rerun(const std::string& id, const ApiRequest& request);
  HttpResponse ActionStatus(const std::string& id);
  HttpResponse ActionList();

  std::string store_dir_;
  Actions* actions_;
  std::string token_env_;
  // fcntl locks belong to the process: reads of the store from the server's threads take
  // turns (runtime/run_view.h). Each holds it for milliseconds.
  std::mutex store_mu_;
  // The whole history of runs that have ended (nothing writes it again), so that paging
  // through a long one reads its database once. Under store_mu_.
  struct CachedHistory {
    int64_t updated_ms = 0;
    uint64_t effects = 0;
    std::vector<runtime::HistoryEntry> entries;
    size_t bytes = 0;
  };
  std::map<std::string, CachedHistory> history_cache_;
  size_t cached_bytes_ = 0;
  static constexpr size_t kMaxCachedBytes = 64 << 20;
  Status ReadHistoryPage(const std::string& id, uint64_t offset, uint64_t limit, runtime::HistoryPage* page);
};

// {"error": message} with `status`.
HttpResponse JsonError(int status, const std::string& message);

}  // namespace flow::ui
