// Effects on the process's world: randomness, the environment, sleeping, files. Each is
// marked effectful in builtins.def, so the VM checkpoints after it: a resumed run sees the
// value it saw, and nothing done is done again.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>

#include "stdlib/natives.h"
#include "vm/base/coding.h"
#include "vm/base/saturate.h"

namespace flow::stdlib {

NativeResult RandomInt(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kInt || args[1].tag != Tag::kInt)
    return Raise(vm, "type", "random.int(lo, hi) takes two ints");
  if (args[0].i > args[1].i) return Raise(vm, "arith", fmt::format("random.int: lo {} is above hi {}", args[0].i, args[1].i));
  static std::mt19937_64 engine{std::random_device{}()};
  std::uniform_int_distribution<int64_t> pick(args[0].i, args[1].i);  // both ends included
  *out = Value::Int(pick(engine));
  return kDone;
}

// uuid(): a random UUID (version 4), as text. A read effect: a resumed run sees the one it got.
NativeResult Uuid(VM& vm, Value*, int, Value* out) {
  static std::mt19937_64 engine{[] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }()};
  uint8_t b[16];
  for (int i = 0; i < 16; i += 8) {
    uint64_t r = engine();
    for (int k = 0; k < 8; ++k) b[i + k] = static_cast<uint8_t>(r >> (8 * k));
  }
  b[6] = static_cast<uint8_t>((b[6] & 0x0F) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3F) | 0x80);  // the RFC 4122 variant
  std::string text;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += fmt::format("{:02x}", b[i]);
  }
  *out = vm.heap().NewString(std::move(text));
  return kDone;
}

NativeResult EnvGet(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kString) return Raise(vm, "type", "env.get(name) takes a string");
  std::string v;
  bool set = vm.host().EnvironmentValue(vm.heap().StringOf(args[0]), &v);
  *out = set ? vm.heap().NewString(std::move(v)) : (argc == 2 ? args[1] : Value::Null());
  return kDone;
}

// secret(NAME): the environment variable NAME as a secret: persisted as a reference (the
// name), re-read on resume, shown masked, revealed only to http headers and exec.
NativeResult Secret(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kString) return Raise(vm, "type", "secret(name) takes the name of an environment variable");
  const std::string& name = vm.heap().StringOf(args[0]);
  std::string v;
  if (!vm.host().EnvironmentValue(name, &v))
    return Raise(vm, "secret", fmt::format("the secret `{}` is not set in the environment", name));
  uint32_t id = vm.heap().Make<SecretObj>();
  SecretObj* sec = vm.heap().Mutable<SecretObj>(id);
  sec->parts.push_back({true, name});
  sec->value = std::move(v);
  *out = Value::Ref(Tag::kSecret, id);
  return kDone;
}

NativeResult Sleep(VM& vm, Value* args, int, Value* out) {
  if (args[0].tag != Tag::kInt || args[0].i < 0) return Raise(vm, "type", "sleep(ms) takes a non-negative int (a duration)");
  // A timer of the VM's scheduler: other tasks run meanwhile, and the run suspends if every
  // task waits long. Inside a timeout the wait ends at the deadline, which then raises
  // `timeout`. A wait begun before a crash keeps its end (ShouldSuspend).
  int64_t wake_ms;
  vm.host().ShouldSuspend(args[0].i, &wake_ms);
  if (vm.deadline() != INT64_MAX && wake_ms >= vm.deadline()) return vm.WaitUntil(vm.deadline(), true);
  return vm.WaitUntil(wake_ms, false);
}

// signal.wait(NAME [, {timeout: D}]): the value `flow signal RUN NAME JSON` delivered, kept
// for the run if it came before the wait. Without one, a live process waits a little, then
// the run suspends (exit 75) until the signal or the timeout; the timeout raises `timeout`.
NativeResult SignalWait(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kString) return Raise(vm, "type", "signal.wait(name, options) takes a signal name");
  const std::string name = vm.heap().StringOf(args[0]);
  int64_t timeout_ms = -1;
  if (argc == 2) {
    if (args[1].tag != Tag::kMap) return Raise(vm, "type", "signal.wait options must be a map");
    if (const Value* t = vm.heap().Get<MapObj>(args[1].ref)->Find("timeout")) {
      if (t->tag != Tag::kInt || t->i < 0) return Raise(vm, "type", "signal.wait option timeout must be a duration");
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
    // A damaged mailbox is store damage: the run stops (exit 3), untouched, never a
    // catchable error that would lose the signal.
    if (Status s = host.TakeSignal(name, &found, &json); !s.ok()) return vm.Abort(s);
    if (found) return ParseJson(vm, json.empty() ? "null" : json, out) ? kDone : kRaised;
    if (host.TakeCancel()) return Raise(vm, "cancelled", "the run was cancelled (flow cancel)");
    int64_t now = host.NowMs();
    if (now >= wait_end) {
      if (cut_by_deadline) return RaiseDeadline(vm);
      return Raise(vm, "timeout", fmt::format("no signal `{}` within {} ms", name, timeout_ms));
    }
    // Other tasks run meanwhile: the VM reads the mailbox when they wait.
    if (vm.OtherTasksLive()) {
      return vm.WaitForSignal(name, wait_end, [name, timeout_ms, cut_by_deadline](VM& vm, const std::string* json, Value* out) {
        if (json) return ParseJson(vm, json->empty() ? "null" : *json, out) ? kDone : kRaised;
        if (cut_by_deadline) return RaiseDeadline(vm);
        return Raise(vm, "timeout", fmt::format("no signal `{}` within {} ms", name, timeout_ms));
      });
    }
    // No timeout: suspend at once. A timeout: a live process polls its mailbox while the
    // rest is short, and suspends when it is long (or under --detach).
    if (wait_end == INT64_MAX) return vm.Suspend({0, name});
    int64_t left = wait_end - now, ignored;
    if (host.ShouldSuspend(left, &ignored)) return vm.Suspend({wait_end, name});
    host.SleepMs(host.virtual_time() ? left : std::min<int64_t>(left, 50));
  }
}

namespace {

constexpr int64_t kDefaultMaxReadBytes = 64 << 20;

// The path argument of an fs builtin: a string without NUL bytes (the OS would read the
// path only up to the first one: "a\u0000.txt" would be "a").
bool PathArg(VM& vm, Value v, const char* fn, std::string* path) {
  if (v.tag != Tag::kString) return vm.Raise("type", fmt::format("{} takes a path string", fn));
  *path = vm.heap().StringOf(v);
  if (path->find('\0') != std::string::npos)
    return vm.Raise("fs", fmt::format("{}: the path contains a NUL byte", fn));
  return true;
}

// A local file effect has no idempotency key: it is made exactly once by its pre-state,
// recorded with its intent (EffectJournal::RecordPreState) before the file changes.
// Format (docs/checkpoint.md): format:u8 (1) existed:u8 size:u64.
struct FileState {
  bool existed = false;
  uint64_t size = 0;  // of a regular file; 0 for anything else
};
constexpr uint8_t kFileStateFormat = 1;

bool StatFile(const std::string& path, FileState* state, std::string* error) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    *state = {true, S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0};
    return true;
  }
  if (errno == ENOENT || errno == ENOTDIR) {
    *state = {};
    return true;
  }
  *error = std::strerror(errno);
  return false;
}

// The state this effect recorded before the run stopped, if it was then in flight.
std::optional<FileState> ResumedFileState(VM& vm) {
  EffectJournal* journal = vm.journal();
  const std::string* bytes = journal ? journal->ResumedPreState(vm) : nullptr;
  if (!bytes || bytes->size() != 10 || (*bytes)[0] != kFileStateFormat) return std::nullopt;
  return FileState{(*bytes)[1] != 0, DecodeFixed64(reinterpret_cast<const uint8_t*>(bytes->data() + 2))};
}

bool RecordFileState(VM& vm, const FileState& state, const char* fn) {
  EffectJournal* journal = vm.journal();
  if (!journal) return true;
  std::string bytes;
  PutFixed8(&bytes, kFileStateFormat);
  PutFixed8(&bytes, state.existed);
  PutFixed64(&bytes, state.size);
  if (Status s = journal->RecordPreState(vm, bytes); !s.ok())
    return vm.Raise("fatal", fmt::format("{}: cannot record the file's state: {}", fn, s.message()));
  return true;
}

// Puts a file back as an interrupted append found it: cut back to its length, or removed
// if the append created it.
bool RestoreFile(const std::string& path, const FileState& was, std::string* error) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return true;  // nothing to undo
  if (!was.existed) {
    if (unlink(path.c_str()) == 0 || errno == ENOENT) return true;
  } else if (static_cast<uint64_t>(st.st_size) <= was.size ||
             truncate(path.c_str(), static_cast<off_t>(was.size)) == 0) {
    return true;
  }
  *error = std::strerror(errno);
  return false;
}

bool WriteAll(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Writes `text` to `target` in place (with `flags`); errno is set on failure.
bool WriteInPlace(const std::string& target, std::string_view text, int flags) {
  int fd = open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0666);
  if (fd < 0) return false;
  bool ok = WriteAll(fd, text);
  int saved = errno;
  if (close(fd) != 0 && ok) return false;
  errno = saved;
  return ok;
}

// Replaces a regular file's content atomically: a temporary file beside it, then rename,
// so a crash leaves the old content or the new, never a part. Writes through a symlink to
// its target and keeps the file's permission bits. Device nodes, FIFOs (and a folder
// that refuses a new file) are written in place.
bool ReplaceFile(const std::string& path, std::string_view text) {
  std::error_code ec;
  std::filesystem::path target = std::filesystem::weakly_canonical(path, ec);
  if (ec) target = path;
  struct stat st;
  bool exists = stat(target.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) return WriteInPlace(target, text, O_TRUNC);
  std::filesystem::path temp = target;
  temp.replace_filename("." + target.filename().string() + fmt::format(".{}.flow-tmp", getpid()));
  int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, exists ? (st.st_mode & 07777) : 0666);
  if (fd < 0) return errno == EACCES || errno == EROFS ? WriteInPlace(target, text, O_TRUNC) : false;
  bool ok = WriteAll(fd, text) && (!exists || fchmod(fd, st.st_mode & 07777) == 0);
  int saved = errno;
  ok = close(fd) == 0 && ok;
  if (ok && rename(temp.c_str(), target.c_str()) == 0) return true;
  saved = ok ? errno : saved;
  unlink(temp.c_str());
  errno = saved;
  return false;
}

}  // namespace

// fs.read(path [, {max_bytes}]): the whole file, up to max_bytes (default 64 MiB; more
// raises `fs`, so an endless file such as /dev/zero cannot exhaust memory).
NativeResult FsRead(VM& vm, Value* args, int argc, Value* out) {
  std::string path;
  if (!PathArg(vm, args[0], "fs.read", &path)) return kRaised;
  int64_t max_bytes = kDefaultMaxReadBytes;
  if (argc == 2) {
    if (args[1].tag != Tag::kMap) return Raise(vm, "type", "fs.read options must be a map");
    if (const Value* v = vm.heap().Get<MapObj>(args[1].ref)->Find("max_bytes")) {
      if (v->tag != Tag::kInt || v->i <= 0) return Raise(vm, "type", "fs.read option max_bytes must be a positive int");
      max_bytes = v->i;
    }
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Raise(vm, "fs", fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return Raise(vm, "fs", fmt::format("cannot read {}: {}", path, std::strerror(e)));
    }
    if (n == 0) break;
    if (static_cast<int64_t>(text.size()) + n > max_bytes) {
      close(fd);
      return Raise(vm, "fs", fmt::format("{} is larger than {} bytes (option max_bytes)", path, max_bytes));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  *out = vm.heap().NewString(std::move(text));
  return kDone;
}

// fs.write: the file's new content, replaced atomically. Running it again after a crash
// writes the same content, so it needs no pre-state.
NativeResult FsWrite(VM& vm, Value* args, int, Value* out) {
  std::string path;
  if (!PathArg(vm, args[0], "fs.write", &path)) return kRaised;
  if (args[1].tag != Tag::kString) return Raise(vm, "type", "fs.write(path, text) takes two strings");
  if (!ReplaceFile(path, vm.heap().StringOf(args[1])))
    return Raise(vm, "fs", fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  *out = Value::Null();
  return kDone;
}

// fs.append: exactly once across crashes. Its pre-state is the file's length (or that it
// did not exist); an append that was in flight when the run stopped first cuts the file
// back to it, then appends again.
NativeResult FsAppend(VM& vm, Value* args, int, Value* out) {
  std::string path, error;
  if (!PathArg(vm, args[0], "fs.append", &path)) return kRaised;
  if (args[1].tag != Tag::kString) return Raise(vm, "type", "fs.append(path, text) takes two strings");
  if (std::optional<FileState> was = ResumedFileState(vm); was && !RestoreFile(path, *was, &error))
    return Raise(vm, "fs", fmt::format("cannot undo the interrupted fs.append to {}: {}", path, error));
  FileState now;
  if (!StatFile(path, &now, &error)) return Raise(vm, "fs", fmt::format("cannot write {}: {}", path, error));
  if (!RecordFileState(vm, now, "fs.append")) return kRaised;
  if (!WriteInPlace(path, vm.heap().StringOf(args[1]), O_APPEND))
    return Raise(vm, "fs", fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  *out = Value::Null();
  return kDone;
}

NativeResult FsExists(VM& vm, Value* args, int, Value* out) {
  std::string path;
  if (!PathArg(vm, args[0], "fs.exists", &path)) return kRaised;
  std::error_code ec;
  *out = Value::Bool(std::filesystem::exists(path, ec));
  return kDone;
}

// The names in a folder, sorted (so a resumed run and an uninterrupted one agree).
NativeResult FsList(VM& vm, Value* args, int, Value* out) {
  std::string path;
  if (!PathArg(vm, args[0], "fs.list", &path)) return kRaised;
  std::error_code ec;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  if (ec) return Raise(vm, "fs", fmt::format("cannot list {}: {}", path, ec.message()));
  std::sort(names.begin(), names.end());
  std::vector<Value> items;
  for (auto& n : names) items.push_back(vm.heap().NewString(std::move(n)));
  *out = vm.heap().NewList(std::move(items));
  return kDone;
}

// Removes a file or an empty folder; removing what is not there is not an error. Returns
// whether something was removed: its pre-state (whether it existed) makes that answer the
// same when a remove in flight at a crash runs again.
// fs.mkdir(path): the folder and any missing parents; nothing if it exists. Doing it again
// changes nothing, so a resumed run that repeats it is the same.
NativeResult FsMkdir(VM& vm, Value* args, int, Value* out) {
  std::string path;
  if (!PathArg(vm, args[0], "fs.mkdir", &path)) return kRaised;
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Raise(vm, "fs", fmt::format("cannot make the folder {}: {}", path, ec.message()));
  *out = Value::Null();
  return kDone;
}

NativeResult FsRemove(VM& vm, Value* args, int, Value* out) {
  std::string path, error;
  if (!PathArg(vm, args[0], "fs.remove", &path)) return kRaised;
  std::optional<FileState> was = ResumedFileState(vm);
  FileState now;
  if (!was && !StatFile(path, &now, &error)) return Raise(vm, "fs", fmt::format("cannot remove {}: {}", path, error));
  if (!RecordFileState(vm, was ? *was : now, "fs.remove")) return kRaised;
  std::error_code ec;
  bool removed = std::filesystem::remove(path, ec);
  if (ec) return Raise(vm, "fs", fmt::format("cannot remove {}: {}", path, ec.message()));
  *out = Value::Bool(was ? was->existed : removed);
  return kDone;
}

}  // namespace flow::stdlib
