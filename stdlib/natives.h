// The native functions of builtins.def, by module; stdlib/builtins.cc puts them in the table.
#pragma once
#include "stdlib/stdlib.h"

namespace flow::stdlib {

#define FLOW_NATIVE(name) NativeResult name(VM& vm, Value* args, int argc, Value* out);
FLOW_NATIVE(RandomInt)
FLOW_NATIVE(EnvGet)
FLOW_NATIVE(Sleep)
FLOW_NATIVE(FsRead)
FLOW_NATIVE(FsWrite)
FLOW_NATIVE(FsAppend)
FLOW_NATIVE(HttpGet)
FLOW_NATIVE(HttpPost)
FLOW_NATIVE(SignalWait)
FLOW_NATIVE(FsExists)
FLOW_NATIVE(FsList)
FLOW_NATIVE(FsRemove)
FLOW_NATIVE(HttpPut)
FLOW_NATIVE(HttpPatch)
FLOW_NATIVE(HttpDelete)
FLOW_NATIVE(HttpRequest)
FLOW_NATIVE(ExecRun)
FLOW_NATIVE(ExecShell)
FLOW_NATIVE(Secret)
FLOW_NATIVE(LlmChat)
FLOW_NATIVE(LogInfo)
FLOW_NATIVE(LogWarn)
FLOW_NATIVE(LogError)
FLOW_NATIVE(RunId)
FLOW_NATIVE(RunStartedAt)
FLOW_NATIVE(Uuid)
FLOW_NATIVE(FsMkdir)
FLOW_NATIVE(TimeFormat)
FLOW_NATIVE(TimeParse)
FLOW_NATIVE(ReMatch)
FLOW_NATIVE(ReFindAll)
FLOW_NATIVE(ReReplace)
FLOW_NATIVE(Assert)
FLOW_NATIVE(AssertEq)
FLOW_NATIVE(SignalSend)
FLOW_NATIVE(Mock)
#undef FLOW_NATIVE

}  // namespace flow::stdlib
