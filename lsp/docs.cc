#include "lsp/docs.h"

#include <fmt/format.h>

namespace flow::lsp {

namespace {

constexpr BuiltinDoc kBuiltinDocs[] = {
#define BUILTIN(id, name, min_args, max_args, effect, signature, doc) {name, signature, doc},
#include "vm/bytecode/builtins.def"
#undef BUILTIN
};

constexpr MethodDoc kMethodDocs[] = {
#define METHOD(id, receiver, name, min_args, max_args, written_in, signature, doc) \
  {MethodReceiver::receiver, name, signature, doc},
#include "vm/bytecode/methods.def"
#undef METHOD
};

}  // namespace

std::span<const BuiltinDoc> BuiltinDocs() { return kBuiltinDocs; }
std::span<const MethodDoc> MethodDocs() { return kMethodDocs; }

std::string BuiltinHover(int builtin) {
  if (builtin < 0 || static_cast<size_t>(builtin) >= std::size(kBuiltinDocs)) return "";
  const BuiltinDoc& d = kBuiltinDocs[builtin];
  return fmt::format("```flow\n{}\n```\n{}", d.signature, d.doc);
}

std::string MethodHover(const std::string& name) {
  std::string text;
  for (const MethodDoc& m : kMethodDocs) {
    if (name != m.name) continue;
    if (!text.empty()) text += "\n\n";
    text += fmt::format("```flow\n{}.{}\n```\n{}", ReceiverName(m.receiver), m.signature, m.doc);
  }
  return text;
}

}  // namespace flow::lsp
