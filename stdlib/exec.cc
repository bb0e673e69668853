// exec.run([argv...], {cwd, env, stdin, timeout, max_output}) and exec.shell(cmd, opts):
// a child process in a process group of its own, no shell unless asked for. Returns
// {code, stdout, stderr} (a non-zero exit is not an error; a child killed by signal S has
// code 128+S). Output is capped (default 16 MiB per stream, option max_output). On the
// timeout, or at an enclosing deadline, the whole group is killed and `timeout` raised;
// the child is also killed if flow itself dies (PR_SET_PDEATHSIG).
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

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

// argv holds the real values (secrets revealed); `program` is argv[0] as messages show it
// (masked), so a secret in the program path does not reach the error.
bool RunProcess(VM& vm, std::vector<std::string> argv, const std::string& program, Value options_value, Value* out) {
  Heap& heap = vm.heap();
  const MapObj* options = nullptr;
  if (options_value.tag == Tag::kMap) options = heap.Get<MapObj>(options_value.ref);
  else if (options_value.tag != Tag::kNull) return vm.Raise("type", "exec options must be a map");
  auto option = [&](const char* name) -> const Value* { return options ? options->Find(name) : nullptr; };

  std::string cwd, stdin_text;
  int64_t timeout_ms = INT64_MAX, max_output = kDefaultMaxOutput;
  std::vector<std::string> env_extra;
  if (const Value* v = option("cwd")) {
    std::string error;
    if (v->tag != Tag::kString) return vm.Raise("type", "exec option cwd must be a string");
    if (!WireString(heap, *v, "exec option cwd", &cwd, &error)) return vm.Raise("type", error);
  }
  if (const Value* v = option("stdin")) {
    if (v->tag != Tag::kString && v->tag != Tag::kSecret) return vm.Raise("type", "exec option stdin must be a string");
    std::string error;
    RevealString(heap, *v, &stdin_text, &error);  // may hold NUL bytes: it is written whole
  }
  if (const Value* v = option("timeout")) {
    if (v->tag != Tag::kInt || v->i <= 0) return vm.Raise("type", "exec option timeout must be a positive duration");
    timeout_ms = v->i;
  }
  if (const Value* v = option("max_output")) {
    if (v->tag != Tag::kInt || v->i <= 0) return vm.Raise("type", "exec option max_output must be a positive int");
    max_output = v->i;
  }
  if (const Value* v = option("env")) {
    if (v->tag != Tag::kMap) return vm.Raise("type", "exec option env must be a map of strings");
    for (const auto& [k, val] : heap.Get<MapObj>(v->ref)->entries) {
      // A name with `=` would set another variable ("PATH=/evil:" + "=x" sets PATH).
      if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
        return vm.Raise("type", fmt::format("exec env name `{}` is not a variable name (empty, or has `=` or a NUL byte)",
                                            k.substr(0, k.find('\0'))));
      std::string text, error;
      if (!WireString(heap, val, fmt::format("exec env value of {}", k), &text, &error)) return vm.Raise("type", error);
      env_extra.push_back(k + "=" + text);
    }
  }
  // Deadline: the option, cut by an enclosing `timeout` (on the run's clock).
  int64_t run_now = vm.host().NowMs();
  bool by_deadline = false;
  if (vm.deadline() != INT64_MAX && vm.deadline() - run_now < timeout_ms) {
    timeout_ms = std::max<int64_t>(0, vm.deadline() - run_now);
    by_deadline = true;
  }

  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC))
    return vm.Raise("exec", fmt::format("cannot create pipes: {}", std::strerror(errno)));
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (auto& e : env_extra) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int exec_error[2];
  if (pipe2(exec_error, O_CLOEXEC)) return vm.Raise("exec", "cannot create a pipe");
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return vm.Raise("exec", fmt::format("cannot fork: {}", std::strerror(errno)));
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      int e = errno;
      (void)!write(exec_error[1], &e, sizeof e);
      _exit(127);
    }
    execvpe(args[0], args.data(), envp.data());
    int e = errno;
    (void)!write(exec_error[1], &e, sizeof e);
    _exit(127);
  }
  setpgid(pid, pid);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(exec_error[1]);
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

  std::string outputs[2];
  bool truncated[2] = {false, false};
  size_t written = 0;
  int fds[3] = {out_pipe[0], err_pipe[0], in_pipe[1]};
  bool open_fd[3] = {true, true, true};
  if (stdin_text.empty()) {
    close(in_pipe[1]);
    open_fd[2] = false;
  } else {
    fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  }
  int64_t end = AddSaturated(NowMs(), timeout_ms);
  bool timed_out = false;
  signal(SIGPIPE, SIG_IGN);
  while (open_fd[0] || open_fd[1]) {
    pollfd p[3];
    int n = 0, map[3];
    for (int i = 0; i < 3; ++i) {
      if (!open_fd[i]) continue;
      p[n] = {fds[i], static_cast<short>(i == 2 ? POLLOUT : POLLIN), 0};
      map[n++] = i;
    }
    int64_t wait = end == INT64_MAX ? 1000 : std::min<int64_t>(1000, end - NowMs());
    if (wait <= 0) {
      timed_out = true;
      break;
    }
    int ready = poll(p, n, static_cast<int>(wait));
    if (ready < 0 && errno != EINTR) break;
    for (int k = 0; k < n; ++k) {
      int i = map[k];
      if (!p[k].revents) continue;
      if (i == 2) {
        ssize_t w = write(fds[2], stdin_text.data() + written, stdin_text.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == stdin_text.size()) {
          close(fds[2]);
          open_fd[2] = false;
        }
        continue;
      }
      char buf[65536];
      ssize_t r = read(fds[i], buf, sizeof buf);
      if (r <= 0) {
        close(fds[i]);
        open_fd[i] = false;
        continue;
      }
      size_t room = static_cast<size_t>(max_output) - std::min(outputs[i].size(), static_cast<size_t>(max_output));
      outputs[i].append(buf, std::min(room, static_cast<size_t>(r)));
      if (static_cast<size_t>(r) > room) truncated[i] = true;  // keep draining, keep nothing more
    }
    if (vm.host().TakeCancel()) {
      kill(-pid, SIGKILL);
      for (int i = 0; i < 3; ++i)
        if (open_fd[i]) close(fds[i]);
      waitpid(pid, nullptr, 0);
      return vm.Raise("cancelled", "the run was cancelled (flow cancel)");
    }
  }
  int status = 0;
  if (timed_out) {
    kill(-pid, SIGKILL);  // the whole group: the child and whatever it started
    for (int i = 0; i < 3; ++i)
      if (open_fd[i]) close(fds[i]);
    waitpid(pid, &status, 0);
    if (by_deadline) return vm.RaiseDeadline();
    return vm.Raise("timeout", fmt::format("{} did not finish within {} ms", program, timeout_ms));
  }
  if (open_fd[2]) close(fds[2]);
  waitpid(pid, &status, 0);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
  Value result = heap.NewMap();
  MapObj* m = heap.Mutable<MapObj>(result.ref);
  m->Set("code", Value::Int(code));
  // What the child printed may hold a secret it was given (or inherited): scrubbed.
  SecretScrubber scrubber(heap);
  m->Set("stdout", heap.NewString(scrubber.Scrub(std::move(outputs[0]))));
  m->Set("stderr", heap.NewString(scrubber.Scrub(std::move(outputs[1]))));
  if (truncated[0] || truncated[1]) m->Set("truncated", Value::Bool(true));
  *out = result;
  return true;
}

}  // namespace

bool ExecRun(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kList) return vm.Raise("type", "exec.run takes a list: [program, arguments...]");
  std::vector<std::string> argv;
  const auto& items = vm.heap().Get<ListObj>(args[0].ref)->items;
  for (size_t i = 0; i < items.size(); ++i) {
    std::string text, error;
    if (!WireString(vm.heap(), items[i], fmt::format("exec.run argument {}", i), &text, &error))
      return vm.Raise("type", error);
    argv.push_back(std::move(text));
  }
  if (argv.empty() || argv[0].empty()) return vm.Raise("type", "exec.run needs a program to run");
  std::string program, error;
  ToDisplayString(vm.heap(), items[0], &program, &error);
  return RunProcess(vm, std::move(argv), program, argc == 2 ? args[1] : Value::Null(), out);
}

bool ExecShell(VM& vm, Value* args, int argc, Value* out) {
  if (args[0].tag != Tag::kString && args[0].tag != Tag::kSecret) return vm.Raise("type", "exec.shell takes a command string");
  std::string cmd, error;
  if (!WireString(vm.heap(), args[0], "exec.shell command", &cmd, &error)) return vm.Raise("type", error);
  return RunProcess(vm, {"/bin/sh", "-c", cmd}, "/bin/sh", argc == 2 ? args[1] : Value::Null(), out);
}

}  // namespace flow::stdlib
