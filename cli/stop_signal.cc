#include "cli/stop_signal.h"

#include <signal.h>

namespace flow::cli {

namespace {

std::atomic<bool> stop_asked{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void OnSigterm(int) {
  stop_asked.store(true);
  ::signal(SIGTERM, SIG_DFL);  // the next one ends the process
}

}  // namespace

void StopOnSigterm() {
  struct sigaction sa {};
  sa.sa_handler = OnSigterm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a worker's poll returns to look at the flag
  ::sigaction(SIGTERM, &sa, nullptr);
}

bool StopAsked() { return stop_asked.load(std::memory_order_relaxed); }
const std::atomic<bool>* StopFlag() { return &stop_asked; }

}  // namespace flow::cli
