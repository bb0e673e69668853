#include "cli/ui/actions.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

extern char** environ;

namespace flow::ui {

namespace {
int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}
}  // namespace

Result<uint64_t> Actions::Start(const std::string& command, const std::string& run_id,
                                const std::vector<std::string>& args, const std::string& drop_env) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::IOError(std::string("cannot make a pipe: ") + std::strerror(errno));
  std::vector<std::string> argv_text{flow_binary_};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  const std::string drop = drop_env + "=";
  for (char** e = environ; *e; ++e)
    if (drop_env.empty() || std::strncmp(*e, drop.c_str(), drop.size()) != 0) envp.push_back(*e);
  envp.push_back(nullptr);

  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&files, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&files, pipe_fds[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&files, 3);  // not the server's socket: it must not outlive the server
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  int error = posix_spawn(&pid, flow_binary_.c_str(), &files, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  close(pipe_fds[1]);
  if (error != 0) {
    close(pipe_fds[0]);
    return Status::IOError("cannot start " + flow_binary_ + ": " + std::strerror(error));
  }
  uint64_t id;
  {
    std::lock_guard<std::mutex> hold(mu_);
    id = next_id_++;
    Action& a = actions_[id];
    a.id = id;
    a.command = command;
    a.run_id = run_id;
    a.pid = pid;
    a.started_ms = NowMs();
  }
  std::thread([this, id, pid, fd = pipe_fds[0]] { Collect(id, pid, fd); }).detach();
  return id;
}

void Actions::Collect(uint64_t id, int pid, int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard<std::mutex> hold(mu_);
    std::string& out = actions_[id].output;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxOutput) out.erase(0, out.size() - kMaxOutput);
  }
  close(fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::lock_guard<std::mutex> hold(mu_);
  Action& a = actions_[id];
  a.done = true;
  a.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

std::optional<Action> Actions::Get(uint64_t id) const {
  std::lock_guard<std::mutex> hold(mu_);
  auto it = actions_.find(id);
  if (it == actions_.end()) return std::nullopt;
  return it->second;
}

std::vector<Action> Actions::List() const {
  std::lock_guard<std::mutex> hold(mu_);
  std::vector<Action> out;
  for (const auto& [id, a] : actions_) out.push_back(a);
  return out;
}

}  // namespace flow::ui
