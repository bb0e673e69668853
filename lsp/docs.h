// What editors show of the builtins and methods: each one's signature and doc line, from
// vm/bytecode/builtins.def and methods.def (their one home).
#pragma once
#include <span>
#include <string>

#include "vm/bytecode/methods.h"

namespace flow::lsp {

struct BuiltinDoc {
  const char* name;  // as written in Flow: "len", "http.get"
  const char* signature;
  const char* doc;
};

struct MethodDoc {
  MethodReceiver receiver;
  const char* name;
  const char* signature;
  const char* doc;
};

// Indexed by builtin id.
std::span<const BuiltinDoc> BuiltinDocs();
std::span<const MethodDoc> MethodDocs();

// A hover's text: the signature as a code block, then the doc line.
std::string BuiltinHover(int builtin);
// Every method called `name`, one per receiver type; "" if there is none.
std::string MethodHover(const std::string& name);

}  // namespace flow::lsp
