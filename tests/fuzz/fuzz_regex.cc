// libFuzzer target: arbitrary bytes as "pattern \n replacement \n text" through re.match,
// re.find_all and re.replace. A bad pattern must raise `regex`, never crash or hang (RE2
// is linear-time; -timeout catches a regression).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_vm.h"
#include "stdlib/stdlib.h"

namespace {

// The line at the start of `bytes` (all of it when there is no newline), and moves past it.
std::string Line(std::string_view* bytes) {
  size_t end = bytes->find('\n');
  std::string line(bytes->substr(0, end));
  bytes->remove_prefix(end == std::string_view::npos ? bytes->size() : end + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string pattern = Line(&bytes), rewrite = Line(&bytes), text(bytes);
  flow::fuzz::NullHost host;
  const flow::Natives natives = flow::stdlib::GetNatives();
  for (flow::Builtin id : {flow::Builtin::RE_MATCH, flow::Builtin::RE_FIND_ALL, flow::Builtin::RE_REPLACE}) {
    flow::VM vm(&flow::fuzz::CompiledOnce("print(1)"), &host, natives);  // a fresh VM each call: a raised error stays pending
    flow::Value args[3] = {vm.heap().NewString(pattern), vm.heap().NewString(text), vm.heap().NewString(rewrite)};
    flow::Value out;
    const int argc = id == flow::Builtin::RE_REPLACE ? 3 : 2;
    (void)natives.builtins[static_cast<int>(id)](vm, args, argc, &out);
  }
  return 0;
}
