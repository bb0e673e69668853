// The standard library: the native builtins and methods the VM calls by id and name.
#pragma once
#include "vm/vm.h"

namespace flow::stdlib {

// Natives return one of these (vm/vm.h): kDone, kRaised, kAborted, kSuspended.
using enum NativeResult;

// For `return Raise(vm, ...)` in a native: the error is pending in the VM, the native says so.
inline NativeResult Raise(VM& vm, std::string kind, std::string message, Value data = Value::Null()) {
  vm.Raise(std::move(kind), std::move(message), data);
  return kRaised;
}
// For `return RaiseDeadline(vm)`: `budget` if the run's deadline passed, else `timeout`.
inline NativeResult RaiseDeadline(VM& vm) {
  vm.RaiseDeadline();
  return kRaised;
}

// The table of every builtin of vm/bytecode/builtins.def, and the method dispatcher.
Natives GetNatives();

// json.parse without the VM around it: used by the builtin and by tests.
bool ParseJson(VM& vm, std::string_view text, Value* out);
// POSTs `json` to `url` (Content-Type: application/json) with libcurl, loaded as http.get
// loads it, waiting at most `timeout_ms`; false with *error unless it was answered 2xx.
// Safe to call from any thread (each call has its own handle); the VM is not involved.
bool PostJson(const std::string& url, const std::string& json, int64_t timeout_ms, std::string* error);
// Would json.parse accept `text` (valid, and nested no deeper than it allows)? Else *error.
bool CheckJson(std::string_view text, std::string* error);
// Loads libcurl now (it is otherwise loaded at the first http call): a process that forks
// many children (flow worker) loads it once for all of them.
void PrepareHttp();
// Closes the connections this process keeps open for reuse (libcurl's, on its one multi
// handle), with no request in flight: a flow worker's child, between two runs, so that a
// run's connections are its own, as in a process of its own.
void CloseHttpConnections();

}  // namespace flow::stdlib
