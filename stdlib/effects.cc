// Effects on the process's world: randomness, the environment, sleeping, files. Each is
// marked effectful in builtins.def, so the VM checkpoints after it: a resumed run sees the
// value it saw, and nothing done is done again.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "stdlib/natives.h"
#include "vm/base/saturate.h"

namespace flow::stdlib {

bool RandomInt(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kInt || args[1].tag != Tag::kInt)
    return vm.Raise("type", "random.int(lo, hi) takes two ints");
  if (args[0].i > args[1].i) return vm.Raise("arith", fmt::format("random.int: lo {} is above hi {}", args[0].i, args[1].i));
  static std::mt19937_64 engine{std::random_device{}()};
  std::uniform_int_distribution<int64_t> pick(args[0].i, args[1].i);  // both ends included
  *out = Value::Int(pick(engine));
  return true;
}

bool EnvGet(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kString) return vm.Raise("type", "env.get(name) takes a string");
  const char* v = std::getenv(vm.heap().StringOf(args[0]).c_str());
  *out = v ? vm.heap().NewString(v) : (argc == 2 ? args[1] : Value::Null());
  return true;
}

// secret(NAME): the environment variable NAME as a secret: persisted as a reference (the
// name), re-read on resume, shown masked, revealed only to http headers and exec.
bool Secret(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kString) return vm.Raise("type", "secret(name) takes the name of an environment variable");
  const std::string& name = vm.heap().StringOf(args[0]);
  const char* v = std::getenv(name.c_str());
  if (!v) return vm.Raise("secret", fmt::format("the secret `{}` is not set in the environment", name));
  uint32_t id = vm.heap().Make<SecretObj>();
  SecretObj* sec = vm.heap().Mutable<SecretObj>(id);
  sec->parts.push_back({true, name});
  sec->value = v;
  *out = Value::Ref(Tag::kSecret, id);
  return true;
}

bool Sleep(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kInt || args[0].i < 0) return vm.Raise("type", "sleep(ms) takes a non-negative int (a duration)");
  // Inside a timeout the wait ends at the deadline, which then raises `timeout`.
  int64_t now = vm.host().NowMs();
  if (vm.deadline() != INT64_MAX && AddSaturated(now, args[0].i) >= vm.deadline()) {
    vm.host().SleepMs(std::max<int64_t>(0, vm.deadline() - now));
    return vm.RaiseDeadline();
  }
  int64_t wake_ms;
  if (vm.host().ShouldSuspend(args[0].i, &wake_ms)) return vm.Suspend({wake_ms, ""});
  vm.host().SleepMs(std::max<int64_t>(0, wake_ms - vm.host().NowMs()));
  if (vm.host().TakeCancel()) return vm.Raise("cancelled", "the run was cancelled (flow cancel)");
  *out = Value::Null();
  return true;
}

// signal.wait(NAME [, {timeout: D}]): the value `flow signal RUN NAME JSON` delivered, kept
// for the run if it came before the wait. Without one, a live process waits a little, then
// the run suspends (exit 75) until the signal or the timeout; the timeout raises `timeout`.
bool SignalWait(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kString) return vm.Raise("type", "signal.wait(name, options) takes a signal name");
  const std::string name = vm.heap().StringOf(args[0]);
  int64_t timeout_ms = -1;
  if (argc == 2) {
    if (args[1].tag != Tag::kMap) return vm.Raise("type", "signal.wait options must be a map");
    if (const Value* t = vm.heap().Get<MapObj>(args[1].ref)->Find("timeout")) {
      if (t->tag != Tag::kInt || t->i < 0) return vm.Raise("type", "signal.wait option timeout must be a duration");
      timeout_ms = t->i;
    }
  }
  VmHost& host = vm.host();
  // The wait's end on the run's clock (kept from before a crash), cut by any deadline.
  int64_t wait_end = INT64_MAX;
  if (timeout_ms >= 0) host.ShouldSuspend(timeout_ms, &wait_end);
  bool cut_by_deadline = vm.deadline() < wait_end;
  wait_end = std::min(wait_end, vm.deadline());
  for (;;) {
    bool found = false;
    std::string json;
    if (Status s = host.TakeSignal(name, &found, &json); !s.ok()) return vm.Raise("fatal", s.message());
    if (found) return ParseJson(vm, json.empty() ? "null" : json, out);
    if (host.TakeCancel()) return vm.Raise("cancelled", "the run was cancelled (flow cancel)");
    int64_t now = host.NowMs();
    if (now >= wait_end) {
      if (cut_by_deadline) return vm.RaiseDeadline();
      return vm.Raise("timeout", fmt::format("no signal `{}` within {} ms", name, timeout_ms));
    }
    // No timeout: suspend at once. A timeout: a live process polls its mailbox while the
    // rest is short, and suspends when it is long (or under --detach).
    if (wait_end == INT64_MAX) return vm.Suspend({0, name});
    int64_t left = wait_end - now, ignored;
    if (host.ShouldSuspend(left, &ignored)) return vm.Suspend({wait_end, name});
    host.SleepMs(host.virtual_time() ? left : std::min<int64_t>(left, 50));
  }
}

bool FsRead(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kString) return vm.Raise("type", "fs.read(path) takes a string");
  const std::string& path = vm.heap().StringOf(args[0]);
  std::ifstream in(path, std::ios::binary);
  if (!in) return vm.Raise("fs", fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::ostringstream buf;
  buf << in.rdbuf();
  *out = vm.heap().NewString(buf.str());
  return true;
}

bool WriteFile(VM& vm, Value* args, std::ios::openmode mode, const char* fn, Value* out) {
  if (args[0].tag != Tag::kString || args[1].tag != Tag::kString)
    return vm.Raise("type", fmt::format("{}(path, text) takes two strings", fn));
  const std::string& path = vm.heap().StringOf(args[0]);
  const std::string& text = vm.heap().StringOf(args[1]);
  std::ofstream f(path, std::ios::binary | mode);
  if (f) f.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (f) f.flush();
  if (!f) return vm.Raise("fs", fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  *out = Value::Null();
  return true;
}

bool FsExists(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kString) return vm.Raise("type", "fs.exists(path) takes a string");
  std::error_code ec;
  *out = Value::Bool(std::filesystem::exists(vm.heap().StringOf(args[0]), ec));
  return true;
}

// The names in a folder, sorted (so a resumed run and an uninterrupted one agree).
bool FsList(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kString) return vm.Raise("type", "fs.list(path) takes a string");
  const std::string& path = vm.heap().StringOf(args[0]);
  std::error_code ec;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  if (ec) return vm.Raise("fs", fmt::format("cannot list {}: {}", path, ec.message()));
  std::sort(names.begin(), names.end());
  std::vector<Value> items;
  for (auto& n : names) items.push_back(vm.heap().NewString(std::move(n)));
  *out = vm.heap().NewList(std::move(items));
  return true;
}

// Removes a file or an empty folder; removing what is not there is not an error (so that
// running it again after a crash is harmless). Returns whether something was removed.
bool FsRemove(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kString) return vm.Raise("type", "fs.remove(path) takes a string");
  const std::string& path = vm.heap().StringOf(args[0]);
  std::error_code ec;
  bool removed = std::filesystem::remove(path, ec);
  if (ec) return vm.Raise("fs", fmt::format("cannot remove {}: {}", path, ec.message()));
  *out = Value::Bool(removed);
  return true;
}

bool FsWrite(VM& vm, Value* args, int, Value* out) { return WriteFile(vm, args, std::ios::trunc, "fs.write", out); }
bool FsAppend(VM& vm, Value* args, int, Value* out) { return WriteFile(vm, args, std::ios::app, "fs.append", out); }

}  // namespace flow::stdlib
