#include "vm/bytecode/methods.h"

#include <fmt/format.h>

#include <array>
#include <unordered_map>

namespace flow {

namespace {

using enum MethodReceiver;
using enum WrittenIn;
constexpr MethodInfo kMethodTable[] = {
#define METHOD(id, receiver, name, min_args, max_args, written_in, ...) {receiver, name, min_args, max_args, written_in},
#include "vm/bytecode/methods.def"
#undef METHOD
};

// Per receiver, name -> id: a call looks its method up by name at every INVOKE.
using MethodIndex = std::array<std::unordered_map<std::string_view, int>, kMethodReceiverCount>;
const MethodIndex& Index() {
  static const MethodIndex index = [] {
    MethodIndex built;
    for (int i = 0; i < kMethodCount; ++i)
      built[static_cast<int>(kMethodTable[i].receiver)].emplace(kMethodTable[i].name, i);
    return built;
  }();
  return index;
}

}  // namespace

const MethodInfo& GetMethodInfo(int id) { return kMethodTable[id]; }

int FindMethod(MethodReceiver receiver, std::string_view name) {
  const auto& by_name = Index()[static_cast<int>(receiver)];
  auto it = by_name.find(name);
  return it == by_name.end() ? -1 : it->second;
}

bool IsFlowMethodName(std::string_view name) {
  for (const MethodInfo& m : kMethodTable)
    if (m.written_in == kFlow && m.name == name) return true;
  return false;
}

std::string_view ReceiverName(MethodReceiver receiver) {
  switch (receiver) {
    case kString: return "string";
    case kList: return "list";
    case kMap: return "map";
    case kTask: return "task";
  }
  return "?";
}

std::string MethodArityError(const MethodInfo& m, int argc) {
  if (argc >= m.min_args && (m.max_args < 0 || argc <= m.max_args)) return "";
  std::string want = m.max_args < 0                ? fmt::format("at least {}", m.min_args)
                     : m.min_args == m.max_args    ? fmt::format("{}", m.min_args)
                     : m.max_args == m.min_args + 1 ? fmt::format("{} or {}", m.min_args, m.max_args)
                                                   : fmt::format("{} to {}", m.min_args, m.max_args);
  bool one = m.min_args == 1 && m.max_args == 1;
  return fmt::format("{}.{}() takes {} argument{}, got {}", ReceiverName(m.receiver), m.name, want, one ? "" : "s", argc);
}

std::string FlowMethodFunctionName(const MethodInfo& m) { return fmt::format("{}.{}", ReceiverName(m.receiver), m.name); }

}  // namespace flow
