// The exit codes of the brief. Only the command line picks them: runtime/ returns a
// Status and a result (runtime/runtime.h), which cli/ turns into a message and a code.
#pragma once

namespace flow {

enum ExitCode {
  kExitOk = 0,
  kExitScriptFailed = 1,  // an uncaught error in the script
  kExitLspUnclean = 1,    // flow lsp: the editor left without `shutdown`, or broke the framing (the LSP's rule)
  kExitUsage = 2,         // usage or compile error, unknown or finished run
  kExitCorrupt = 3,       // store or file damage
  kExitOutputFailed = 74,  // the output could not be written (sysexits' EX_IOERR)
  kExitSuspended = 75,    // waiting on a timer or a signal
  kExitDeferred = 76,     // flow resume of a queued run: not started now (its queue is full); try later
};

}  // namespace flow
