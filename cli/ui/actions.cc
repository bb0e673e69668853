#include "cli/ui/actions.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
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

namespace {

// An unnamed file in the temporary folder (removed when its last descriptor closes).
int OutputFile() {
  const char* dir = std::getenv("TMPDIR");
  std::string folder = dir && *dir ? dir : "/tmp";
  int fd = open(folder.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string path = folder + "/flow-ui-action-XXXXXX";
  fd = mkostemp(path.data(), O_CLOEXEC);
  if (fd >= 0) unlink(path.c_str());
  return fd;
}

// The last `max` bytes of the file.
std::string Tail(int fd, size_t max) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return "";
  off_t from = st.st_size > static_cast<off_t>(max) ? st.st_size - static_cast<off_t>(max) : 0;
  std::string out(static_cast<size_t>(st.st_size - from), '\0');
  ssize_t n = pread(fd, out.data(), out.size(), from);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace

Result<uint64_t> Actions::Start(const std::string& command, const std::string& run_id,
                                const std::vector<std::string>& args, const std::string& drop_env) {
  int output = OutputFile();
  if (output < 0) return Status::IOError(std::string("cannot make a file for the output: ") + std::strerror(errno));
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
  posix_spawn_file_actions_adddup2(&files, output, 1);
  posix_spawn_file_actions_adddup2(&files, output, 2);
  posix_spawn_file_actions_addclosefrom_np(&files, 3);  // not the server's socket: it must not outlive the server
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  int error = posix_spawn(&pid, flow_binary_.c_str(), &files, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&files);
  posix_spawnattr_destroy(&attr);
  if (error != 0) {
    close(output);
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
    output_fds_[id] = output;
    for (auto it = actions_.begin(); actions_.size() > kMaxActions && it != actions_.end();) {
      if (!it->second.done) {
        ++it;
        continue;
      }
      close(output_fds_[it->first]);
      output_fds_.erase(it->first);
      it = actions_.erase(it);
    }
  }
  std::thread([this, id, pid] { Wait(id, pid); }).detach();
  return id;
}

void Actions::Wait(uint64_t id, int pid) {
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
  Action a = it->second;
  a.output = Tail(output_fds_.at(id), kMaxOutput);
  return a;
}

std::vector<Action> Actions::List() const {
  std::lock_guard<std::mutex> hold(mu_);
  std::vector<Action> out;
  for (const auto& [id, a] : actions_) {
    out.push_back(a);
    out.back().output = Tail(output_fds_.at(id), kMaxOutput);
  }
  return out;
}

}  // namespace flow::ui
