// The exit codes of the brief, shared by the runtime and the command line.
#pragma once

namespace flow {

enum ExitCode {
  kExitOk = 0,
  kExitScriptFailed = 1,  // an uncaught error in the script
  kExitUsage = 2,         // usage or compile error, unknown or finished run
  kExitCorrupt = 3,       // store or file damage
  kExitOutputFailed = 74,  // the output could not be written (sysexits' EX_IOERR)
  kExitSuspended = 75,    // waiting on a timer or a signal
};

}  // namespace flow
