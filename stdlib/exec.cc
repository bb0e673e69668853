// exec.run([argv...], {cwd, env, stdin, timeout, max_output}) and exec.shell(cmd, opts):
// a child process in a process group of its own, no shell unless asked for. Returns
// {code, stdout, stderr} (a non-zero exit is not an error; a child killed by signal S has
// code 128+S). Output is capped (default 16 MiB per stream, option max_output). On the
// timeout, or at an enclosing deadline, the whole group is killed and `timeout` raised;
// the child is also killed if flow itself dies (PR_SET_PDEATHSIG). Children run while
// other tasks do: the VM polls their pipes (Children, a Completions source).
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>

#include "stdlib/natives.h"
#include "stdlib/secrets.h"
#include "vm/base/saturate.h"
#include "vm/value_ops.h"

extern char** environ;

namespace flow::stdlib {

namespace {

constexpr int64_t kDefaultMaxOutput = 16 << 20;

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

struct ExecOptions {
  std::string cwd, stdin_text;
  int64_t timeout_ms = INT64_MAX, max_output = kDefaultMaxOutput;
  std::vector<std::string> env_extra;  // NAME=value, added to the inherited environment
  bool by_deadline = false;            // timeout_ms is an enclosing `timeout`'s, not the option's
};

bool ReadEnvOption(VM& vm, Value v, ExecOptions* o) {
  Heap& heap = vm.heap();
  if (v.tag != Tag::kMap) return vm.Raise("type", "exec option env must be a map of strings");
  for (const auto& [k, val] : heap.Get<MapObj>(v.ref)->entries) {
    // A name with `=` would set another variable ("PATH=/evil:" + "=x" sets PATH).
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
      return vm.Raise("type", fmt::format("exec env name `{}` is not a variable name (empty, or has `=` or a NUL byte)",
                                          k.substr(0, k.find('\0'))));
    std::string text, error;
    if (!WireString(heap, val, fmt::format("exec env value of {}", k), &text, &error)) return vm.Raise("type", error);
    o->env_extra.push_back(k + "=" + text);
  }
  return true;
}

// Checks and reads exec's options; false with the error raised.
bool ReadExecOptions(VM& vm, Value options_value, ExecOptions* o) {
  Heap& heap = vm.heap();
  const MapObj* options = nullptr;
  if (options_value.tag == Tag::kMap) options = heap.Get<MapObj>(options_value.ref);
  else if (options_value.tag != Tag::kNull) return vm.Raise("type", "exec options must be a map");
  auto option = [&](const char* name) -> const Value* { return options ? options->Find(name) : nullptr; };

  if (const Value* v = option("cwd")) {
    std::string error;
    if (v->tag != Tag::kString) return vm.Raise("type", "exec option cwd must be a string");
    if (!WireString(heap, *v, "exec option cwd", &o->cwd, &error)) return vm.Raise("type", error);
  }
  if (const Value* v = option("stdin")) {
    if (v->tag != Tag::kString && v->tag != Tag::kSecret) return vm.Raise("type", "exec option stdin must be a string");
    std::string error;
    RevealString(heap, *v, &o->stdin_text, &error);  // may hold NUL bytes: it is written whole
  }
  if (const Value* v = option("timeout")) {
    if (v->tag != Tag::kInt || v->i <= 0) return vm.Raise("type", "exec option timeout must be a positive duration");
    o->timeout_ms = v->i;
  }
  if (const Value* v = option("max_output")) {
    if (v->tag != Tag::kInt || v->i <= 0) return vm.Raise("type", "exec option max_output must be a positive int");
    o->max_output = v->i;
  }
  if (const Value* v = option("env"))
    if (!ReadEnvOption(vm, *v, o)) return false;
  return true;
}

// Deadline: the option, cut by an enclosing `timeout` (on the run's clock).
void ApplyRunDeadline(VM& vm, ExecOptions* o) {
  int64_t run_now = vm.host().NowMs();
  if (vm.deadline() != INT64_MAX && vm.deadline() - run_now < o->timeout_ms) {
    o->timeout_ms = std::max<int64_t>(0, vm.deadline() - run_now);
    o->by_deadline = true;
  }
}

// The parent's side of a started child: its pid (also its process group) and pipe ends.
struct Child {
  pid_t pid = -1;
  int stdout_fd = -1, stderr_fd = -1, stdin_fd = -1;
};

// In the child, after fork: only async-signal-safe calls. Never returns.
[[noreturn]] void ExecInChild(pid_t parent, const int in_pipe[2], const int out_pipe[2], const int err_pipe[2],
                              int exec_error, const std::string& cwd, std::vector<char*>& args,
                              std::vector<char*>& envp) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // flow ignores SIGPIPE while it feeds a command's stdin (ChildPump): the command gets
  // the default, as it would from a shell, whatever ran in this process before.
  signal(SIGPIPE, SIG_DFL);
  if (getppid() != parent) _exit(127);
  dup2(in_pipe[0], 0);
  dup2(out_pipe[1], 1);
  dup2(err_pipe[1], 2);
  if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
    int e = errno;
    (void)!write(exec_error, &e, sizeof e);
    _exit(127);
  }
  execvpe(args[0], args.data(), envp.data());
  int e = errno;
  (void)!write(exec_error, &e, sizeof e);
  _exit(127);
}

// Starts argv in a process group of its own; false with the error raised (also when exec failed).
bool SpawnChild(VM& vm, std::vector<std::string>& argv, const std::string& program, const ExecOptions& o,
                Child* child) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
    return vm.Raise("exec", fmt::format("cannot create pipes: {}", std::strerror(errno)));
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (auto& e : o.env_extra) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int exec_error[2];
  if (pipe2(exec_error, O_CLOEXEC)) return vm.Raise("exec", "cannot create a pipe");
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return vm.Raise("exec", fmt::format("cannot fork: {}", std::strerror(errno)));
  if (pid == 0) ExecInChild(parent, in_pipe, out_pipe, err_pipe, exec_error[1], o.cwd, args, envp);
  setpgid(pid, pid);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_error[1]);
  // The exec-error pipe closes on a successful exec (CLOEXEC); a failed one writes its errno.
  int child_errno = 0;
  bool exec_failed = read(exec_error[0], &child_errno, sizeof child_errno) == sizeof child_errno;
  close(exec_error[0]);
  if (exec_failed) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    waitpid(pid, nullptr, 0);
    return vm.Raise("exec", fmt::format("cannot run {}: {}", program, std::strerror(child_errno)));
  }
  *child = {pid, out_pipe[0], err_pipe[0], in_pipe[1]};
  return true;
}

// What the child printed, each stream capped at max_output.
struct ChildOutput {
  std::string text[2];  // stdout, stderr
  bool truncated[2] = {false, false};
};

enum class ChildEnd { kRunning, kExited, kTimedOut };

// One child, driven without blocking: feeds it its stdin and reads its stdout and stderr
// as poll says they are ready, until both close (then it is reaped) or its timeout passes
// (then its whole group is killed and reaped). `status` is its wait status.
class ChildPump {
 public:
  ChildPump(const Child& child, const ExecOptions& o)
      : child_(child), o_(o), fds_{child.stdout_fd, child.stderr_fd, child.stdin_fd},
        end_(AddSaturated(NowMs(), o.timeout_ms)) {
    if (o_.stdin_text.empty())
      Close(kStdin);
    else
      fcntl(fds_[kStdin], F_SETFL, O_NONBLOCK);
    signal(SIGPIPE, SIG_IGN);
  }
  ~ChildPump() {
    if (state_ == ChildEnd::kRunning) KillAndReap();  // abandoned (its task was cancelled)
  }

  ChildEnd state() const { return state_; }
  int status() const { return status_; }
  ChildOutput& output() { return output_; }
  const ExecOptions& options() const { return o_; }

  // The descriptors to poll, and how long the poll may wait for this child.
  int64_t AddPollFds(std::vector<pollfd>* fds, std::vector<std::pair<ChildPump*, int>>* owners) {
    for (int i = 0; i < 3; ++i) {
      if (!open_[i]) continue;
      fds->push_back({fds_[i], static_cast<short>(i == kStdin ? POLLOUT : POLLIN), 0});
      owners->emplace_back(this, i);
    }
    if (!open_[0] && !open_[1]) return 10;  // output closed, not yet exited: look again soon
    return end_ == INT64_MAX ? INT64_MAX : std::max<int64_t>(0, end_ - NowMs());
  }
  void OnReady(int which) {
    if (which == kStdin)
      WriteStdin();
    else
      ReadOutput(which);
  }
  // After a poll: the timeout, or its end once its output closed and it exited.
  void Advance() {
    if (state_ != ChildEnd::kRunning) return;
    if (end_ != INT64_MAX && NowMs() >= end_) {
      KillAndReap();
      state_ = ChildEnd::kTimedOut;
      return;
    }
    if (open_[0] || open_[1]) return;
    if (open_[kStdin]) Close(kStdin);
    if (waitpid(child_.pid, &status_, WNOHANG) == child_.pid) state_ = ChildEnd::kExited;
  }

 private:
  static constexpr int kStdin = 2;  // fds_[0] and fds_[1] are stdout and stderr

  void WriteStdin() {
    const std::string& text = o_.stdin_text;
    ssize_t w = write(fds_[kStdin], text.data() + written_, text.size() - written_);
    if (w > 0) written_ += static_cast<size_t>(w);
    if (w < 0 || written_ == text.size()) Close(kStdin);
  }

  void ReadOutput(int i) {
    char buf[65536];
    ssize_t r = read(fds_[i], buf, sizeof buf);
    if (r <= 0) {
      Close(i);
      return;
    }
    size_t cap = static_cast<size_t>(o_.max_output);
    std::string& text = output_.text[i];
    size_t room = cap - std::min(text.size(), cap);
    text.append(buf, std::min(room, static_cast<size_t>(r)));
    if (static_cast<size_t>(r) > room) output_.truncated[i] = true;  // keep draining, keep nothing more
  }

  void Close(int i) {
    close(fds_[i]);
    open_[i] = false;
  }

  // The whole group: the child and whatever it started.
  void KillAndReap() {
    kill(-child_.pid, SIGKILL);
    for (int i = 0; i < 3; ++i)
      if (open_[i]) Close(i);
    waitpid(child_.pid, &status_, 0);
  }

  Child child_;
  ExecOptions o_;
  ChildOutput output_;
  int fds_[3];
  bool open_[3] = {true, true, true};
  size_t written_ = 0;  // bytes of stdin_text written
  int64_t end_;         // steady clock, or INT64_MAX
  int status_ = 0;
  ChildEnd state_ = ChildEnd::kRunning;
};

// The children of a process: the VM polls them when its tasks wait, so that several run
// at once while one thread runs Flow code.
class Children : public Completions {
 public:
  uint64_t Start(std::unique_ptr<ChildPump> child) {
    uint64_t id = ++next_id_;
    running_[id] = std::move(child);
    return id;
  }
  std::unique_ptr<ChildPump> Take(uint64_t id) {
    auto node = ended_.extract(id);
    return node.empty() ? nullptr : std::move(node.mapped());
  }
  void Poll(int64_t timeout_ms, std::vector<uint64_t>* ended) override {
    std::vector<pollfd> fds;
    std::vector<std::pair<ChildPump*, int>> owners;
    int64_t wait = timeout_ms;
    for (auto& [id, child] : running_) wait = std::min(wait, child->AddPollFds(&fds, &owners));
    int ready = poll(fds.data(), fds.size(), static_cast<int>(std::clamp<int64_t>(wait, 0, 1000)));
    for (size_t k = 0; ready > 0 && k < fds.size(); ++k)
      if (fds[k].revents) owners[k].first->OnReady(owners[k].second);
    for (auto it = running_.begin(); it != running_.end();) {
      it->second->Advance();
      if (it->second->state() == ChildEnd::kRunning) {
        ++it;
        continue;
      }
      ended->push_back(it->first);
      ended_[it->first] = std::move(it->second);
      it = running_.erase(it);
    }
  }
  size_t pending() const override { return running_.size(); }
  void Abandon(uint64_t id) override {
    running_.erase(id);  // ~ChildPump kills and reaps it
    ended_.erase(id);
  }

 private:
  std::map<uint64_t, std::unique_ptr<ChildPump>> running_, ended_;
  uint64_t next_id_ = 0;
};

Children& ProcessChildren() {
  static Children* children = new Children;  // for the process's life
  return *children;
}

// {code, stdout, stderr, truncated?}; what the child printed may hold a secret it was given
// (or inherited): scrubbed.
Value ResultMap(VM& vm, int status, ChildOutput&& output) {
  Heap& heap = vm.heap();
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
  Value result = heap.NewMap();
  MapObj* m = heap.Mutable<MapObj>(result.ref);
  m->Set("code", Value::Int(code));
  SecretScrubber scrubber(heap, vm.host());
  m->Set("stdout", heap.NewString(scrubber.Scrub(std::move(output.text[0]))));
  m->Set("stderr", heap.NewString(scrubber.Scrub(std::move(output.text[1]))));
  if (output.truncated[0] || output.truncated[1]) m->Set("truncated", Value::Bool(true));
  return result;
}

// argv holds the real values (secrets revealed); `program` is argv[0] as messages show it
// (masked), so a secret in the program path does not reach the error.
NativeResult RunProcess(VM& vm, std::vector<std::string> argv, const std::string& program, Value options_value, Value* out) {
  ExecOptions o;
  if (!ReadExecOptions(vm, options_value, &o)) return kRaised;
  ApplyRunDeadline(vm, &o);
  Child child;
  if (!SpawnChild(vm, argv, program, o, &child)) return kRaised;
  // The child runs while other tasks do; its result is made on the VM's thread when it ends.
  Children& children = ProcessChildren();
  uint64_t id = children.Start(std::make_unique<ChildPump>(child, o));
  return vm.WaitForOperation(&children, id, [&children, id, program](VM& vm, Value* out) {
    std::unique_ptr<ChildPump> done = children.Take(id);
    const ExecOptions& o = done->options();
    if (done->state() == ChildEnd::kTimedOut) {
      if (o.by_deadline) return RaiseDeadline(vm);
      return Raise(vm, "timeout", fmt::format("{} did not finish within {} ms", program, o.timeout_ms));
    }
    *out = ResultMap(vm, done->status(), std::move(done->output()));
    return kDone;
  });
}

}  // namespace

NativeResult ExecRun(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kList) return Raise(vm, "type", "exec.run takes a list: [program, arguments...]");
  std::vector<std::string> argv;
  const auto& items = vm.heap().Get<ListObj>(args[0].ref)->items;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string text, error;
    if (!WireString(vm.heap(), items[i], fmt::format("exec.run argument {}", i), &text, &error))
      return Raise(vm, "type", error);
    argv.push_back(std::move(text));
  }
  if (argv.empty() || argv[0].empty()) return Raise(vm, "type", "exec.run needs a program to run");
  std::string program, error;
  ToDisplayString(vm.heap(), items[0], &program, &error);
  return RunProcess(vm, std::move(argv), program, argc == 2 ? args[1] : Value::Null(), out);
}

NativeResult ExecShell(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kString && args[0].tag != Tag::kSecret) return Raise(vm, "type", "exec.shell takes a command string");
  std::string cmd, error;
  if (!WireString(vm.heap(), args[0], "exec.shell command", &cmd, &error)) return Raise(vm, "type", error);
  return RunProcess(vm, {"/bin/sh", "-c", cmd}, "/bin/sh", argc == 2 ? args[1] : Value::Null(), out);
}

}  // namespace flow::stdlib
