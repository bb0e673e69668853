// SIGTERM asks the process to stop where nothing is lost: a durable run suspends at its
// next effect or wait (due at once, so any worker goes on with it), a worker drains. A
// second SIGTERM ends the process at once, as if it had not asked (the run reads as
// crashed and resumes from its last checkpoint).
#pragma once

#include <atomic>

namespace flow::cli {

void StopOnSigterm();
bool StopAsked();
const std::atomic<bool>* StopFlag();

}  // namespace flow::cli
