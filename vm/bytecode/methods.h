// The method table, expanded from methods.def: what `x.name(...)` may call on a string,
// list, map or task, with its argument counts and whether it is written in Flow.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace flow {

enum class MethodReceiver : uint8_t { kString, kList, kMap, kTask };
inline constexpr int kMethodReceiverCount = 4;
enum class WrittenIn : uint8_t { kNative, kFlow };

enum class Method : uint16_t {
#define METHOD(id, receiver, name, min_args, max_args, written_in, ...) id,
#include "vm/bytecode/methods.def"
#undef METHOD
};

inline constexpr int kMethodCount = 0
#define METHOD(id, receiver, name, min_args, max_args, written_in, ...) +1
#include "vm/bytecode/methods.def"
#undef METHOD
    ;

struct MethodInfo {
  MethodReceiver receiver;
  std::string_view name;
  int min_args;
  int max_args;  // -1: any number
  WrittenIn written_in;
};

const MethodInfo& GetMethodInfo(int id);
// The id of `receiver`'s method `name`, or -1.
int FindMethod(MethodReceiver receiver, std::string_view name);
// True if some receiver has a method `name` (the compiler includes Flow-written ones so).
bool IsFlowMethodName(std::string_view name);
// "string", "list", "map", "task".
std::string_view ReceiverName(MethodReceiver receiver);
// The type error for a call with `argc` arguments, or "" if argc is right.
std::string MethodArityError(const MethodInfo& m, int argc);
// The name of the function of stdlib/methods.flow that implements a kFlow method:
// "list.map". Only such functions have a dot in their name.
std::string FlowMethodFunctionName(const MethodInfo& m);

}  // namespace flow
