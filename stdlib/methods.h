// The native methods of vm/bytecode/methods.def (methods.cc, strings.cc), and what they
// share. GetNatives() (builtins.cc) puts them in the table the VM dispatches with.
#pragma once
#include <string_view>

#include "stdlib/stdlib.h"
#include "vm/bytecode/methods.h"

namespace flow::stdlib {

#define FLOW_NATIVE_METHOD(id) NativeResult id(VM& vm, Value receiver, Value* args, int argc, Value* out);
#define METHOD_kNative(id) FLOW_NATIVE_METHOD(id)
#define METHOD_kFlow(id)
#define METHOD(id, receiver, name, min_args, max_args, written_in, ...) METHOD_##written_in(id)
#include "vm/bytecode/methods.def"
#undef METHOD
#undef METHOD_kFlow
#undef METHOD_kNative
#undef FLOW_NATIVE_METHOD

// slice(a [, b]) bounds over n items, as Python's: negative counts from the end, out of
// range clamps, null means the end. False with the error raised.
bool SliceBounds(VM& vm, Value* args, int argc, int64_t n, std::string_view method, int64_t* from, int64_t* to);

// Indexed by method id: the native, or null for a method written in Flow.
extern const NativeMethodFn kNativeMethods[kMethodCount];

}  // namespace flow::stdlib
