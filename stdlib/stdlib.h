// The standard library: the native builtins and methods the VM calls by id and name.
#pragma once
#include "vm/vm.h"

namespace flow::stdlib {

// The table of every builtin of vm/bytecode/builtins.def, and the method dispatcher.
Natives GetNatives();

// json.parse without the VM around it: used by the builtin and by tests.
bool ParseJson(VM& vm, std::string_view text, Value* out);
// Would json.parse accept `text` (valid, and nested no deeper than it allows)? Else *error.
bool CheckJson(std::string_view text, std::string* error);

}  // namespace flow::stdlib
