#include "runtime/worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <climits>
#include <map>
#include <optional>
#include <queue>
#include <set>

#include <fmt/format.h>

#include "runtime/queue.h"
#include "store/keys.h"
#include "store/store.h"

namespace flow::runtime {

const char* WorkerEventName(WorkerEvent e) {
  switch (e) {
    case WorkerEvent::kStarted: return "started";
    case WorkerEvent::kSuspended: return "suspended";
    case WorkerEvent::kCompleted: return "completed";
    case WorkerEvent::kFailed: return "failed";
    case WorkerEvent::kCancelled: return "cancelled";
    case WorkerEvent::kCrashed: return "crashed";
    case WorkerEvent::kPoisoned: return "poisoned";
    case WorkerEvent::kSkipped: return "skipped";
    case WorkerEvent::kDraining: return "draining";
  }
  return "?";
}

namespace {

int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string WakeText(WakeReason why, const store::RunRecord& r) {
  switch (why) {
    case WakeReason::kProcessDied: return "its process died";
    case WakeReason::kTimerDue: return "its timer is due";
    case WakeReason::kWaitTimedOut: return "its wait timed out";
    case WakeReason::kSignalArrived: return "its signal " + r.waiting_signal + " arrived";
    case WakeReason::kQueued: return "queued in " + (r.queue.empty() ? std::string(store::kDefaultQueue) : r.queue);
  }
  return "?";
}

// How much of a child's stderr is kept: its end tells why it died.
constexpr size_t kStderrTail = 4096;

// A child process that executes runs one after another: forked once, it reads a run id
// per line on its command pipe, executes the run, and answers with the run's exit code
// on its result pipe, as the run's own process would have exited with it. So a run costs
// no fork and no exit, and the pages the last run touched serve the next. A run that
// kills its process (a crash, any signal) ends only that process: the run is crashed as
// before, and the next run gets a fresh child (docs/operating.md, "Workers").
struct Child {
  pid_t pid = 0;
  int pidfd = -1;   // readable when the child has exited
  std::optional<int> reaped_status;  // without a pidfd (an old kernel): reaped by polling
  int err_fd = -1;     // the read end of its stderr; -1 once closed
  int cmd_fd = -1;     // run ids to it; closed: it exits once idle
  int result_fd = -1;  // exit codes from it
  std::string run;     // the run it executes ("": idle)
  bool asked_to_stop = false;  // SIGTERM sent (drain)
  int runs = 0;        // runs it has executed
  std::string results;  // a result line not yet ended
  std::string tail;     // the end of its stderr while it executes `run`
  std::string partial;  // a line not yet ended
};

// A child executes at most this many runs, then exits and a fresh one takes its place: what
// a run may leave behind in its process (memory its heap keeps, a descriptor) stays bounded.
constexpr int kRunsPerChild = 64;
// A child's exit code when it could not set itself up (its pipes): a crash of the run.
constexpr int kCannotStart = 125;

// A time at which a run may be due: from a hint file (wake/), a record, or a crash's backoff.
struct Due {
  int64_t at = 0;
  std::string run_id;
  std::string hint_file;  // "" if not from a hint
  bool lease_look = false;  // a look after another process's lease (LookAfterLease)
  bool operator>(const Due& o) const { return at > o.at; }
};

class Pool {
 public:
  Pool(const WorkerOptions& o, WorkerListener* l, WorkerSummary* s, store::Store st)
      : opt_(o), listener_(l), sum_(s), st_(std::move(st)) {}
  ~Pool() {
    StopChildren();
    if (inotify_ >= 0) ::close(inotify_);
  }

  Status Run() {
    // A write to a child that died while idle fails (EPIPE) instead of ending the worker.
    ::signal(SIGPIPE, SIG_IGN);
    if (Status s = WatchWakeIndex(); !s.ok()) return s;
    Scan(Records::kEvery);
    bool drain_announced = false;
    for (;;) {
      int64_t now = NowMs();
      bool draining = opt_.drain && opt_.drain->load();
      if (draining && !drain_announced) {
        drain_announced = true;
        Report({WorkerEvent::kDraining, "", fmt::format("stopping {} run(s) at their next checkpoint", running_.size())});
        for (auto& [pid, c] : children_) {
          if (c.run.empty()) CloseCommands(c);  // idle: it exits
          else AskToStop(c);
        }
      }
      if (!draining && st_.kind() != store::StoreKind::kFolder && !wake_watch_) Rewatch();
      if (!draining && !opt_.once && now - last_scan_ms_ >= opt_.rescan_ms) Scan(Records::kInFiles);
      if (!draining && now >= next_schedule_ms_) FireSchedules(now);
      while (!draining && !timers_.empty() && timers_.top().at <= now) {
        Due d = timers_.top();
        timers_.pop();
        Check(d, now);
      }
      while (!draining && static_cast<int>(running_.size()) < opt_.concurrency && !ready_.empty()) {
        auto [id, why] = ready_.front();
        ready_.pop_front();
        queued_.erase(id);
        Start(id, why);
      }
      if (!unindexed_.empty() &&
          (running_.empty() || unindexed_.size() >= kIndexBatch || now - unindexed_since_ms_ >= kIndexDelayMs))
        IndexPackedRuns();
      if (running_.empty()) {
        if (draining || (opt_.once && ready_.empty())) {
          StopChildren();
          return Status::Ok();
        }
      }
      if (Status s = Wait(draining, now); !s.ok()) return s;
    }
  }

 private:
  void Report(WorkerReport r) {
    r.wall_ms = NowMs();
    listener_->Report(r);
  }

  // The wake index, and the schedules (added, paused, removed: their next tick changes).
  // A store whose hints are not files announces them (PostgreSQL: LISTEN/NOTIFY).
  Status WatchWakeIndex() {
    if (st_.kind() != store::StoreKind::kFolder) {
      Result<std::unique_ptr<store::Store::WakeWatch>> watch = st_.WatchWakes();
      if (!watch.ok()) return watch.status();
      wake_watch_ = std::move(watch.value());
      return Status::Ok();
    }
    const std::string schedules = store::SchedulesPath(opt_.store_dir);
    for (const std::string& dir : {st_.WakeDir(), schedules}) ::mkdir(dir.c_str(), 0755);  // older stores
    inotify_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_ < 0) return Status::IOError(fmt::format("inotify: {}", std::strerror(errno)));
    if (::inotify_add_watch(inotify_, st_.WakeDir().c_str(), IN_CREATE | IN_MOVED_TO) < 0)
      return Status::IOError(fmt::format("cannot watch {}: {}", st_.WakeDir(), std::strerror(errno)));
    schedules_watch_ = ::inotify_add_watch(inotify_, schedules.c_str(), IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_CLOSE_WRITE);
    if (schedules_watch_ < 0)
      return Status::IOError(fmt::format("cannot watch {}: {}", schedules, std::strerror(errno)));
    return Status::Ok();
  }

  // A lost connection to the database (a restart, a failover): listened to again, then
  // every record read, for what was announced meanwhile; tried again each second.
  void Rewatch() {
    Result<std::unique_ptr<store::Store::WakeWatch>> watch = st_.WatchWakes();
    if (!watch.ok()) return;
    wake_watch_ = std::move(watch.value());
    reported_damage_.clear();  // what a scan could not read while the database was away
    Scan(Records::kEvery);
  }

  void FireSchedules(int64_t now) {
    std::vector<ScheduleFiring> fired;
    if (Status s = FireDueSchedules(st_, now, &fired); !s.ok())
      Report({WorkerEvent::kSkipped, "", "schedules: " + s.message()});
    for (const ScheduleFiring& f : fired) {
      listener_->ScheduleFired(f);
      if (f.outcome == ScheduleFiring::Outcome::kSubmitted) Check({0, f.run_id, ""}, now);  // --once starts it too
    }
    next_schedule_ms_ = NextScheduleWakeMs(st_).value_or(INT64_MAX);
  }

  // At start (and when inotify lost events), every record: runs whose process died
  // elsewhere, timers of a store older than the index, hints lost in an OS crash. Then,
  // every rescan_ms, the records of runs in files only (a process may have died under one
  // of them): a packed run is idle, and its wake hint, written before it was packed, says
  // when it is due (docs/checkpoint.md, "Packed runs"). And every hint.
  enum class Records { kEvery, kInFiles };
  void Scan(Records which) {
    last_scan_ms_ = NowMs();
    auto damaged = [&](const std::string& id, const Status& s) {
      if (reported_damage_.insert(id).second) Report({WorkerEvent::kSkipped, id, s.message()});
    };
    std::vector<store::RunRecord> runs = which == Records::kEvery ? st_.ListRuns(damaged) : st_.ListRunsInFiles(damaged);
    for (const store::RunRecord& r : runs)
      if (r.status != store::RunStatus::kQueued) Consider(r, last_scan_ms_);
    for (const store::RunRecord& r : QueuedRunsOf(runs)) Consider(r, last_scan_ms_);  // oldest first
    next_schedule_ms_ = NextScheduleWakeMs(st_).value_or(INT64_MAX);
    std::vector<store::Store::WakeHint> hints;
    if (st_.ListWakeHints(&hints).ok())
      for (auto& h : hints) timers_.push({h.wake_ms, h.run_id, h.file});
  }

  // The rows of the runs the children packed, in the index of packed runs: the children
  // leave them to the worker (Store::LeaveIndexRowsToParent), which adds them many at once,
  // when no child runs, or 256 are waiting, or a second has passed. A run taken again
  // meanwhile is passed over, and a row not added only costs a listing time.
  static constexpr size_t kIndexBatch = 256;
  static constexpr int64_t kIndexDelayMs = 1000;
  void IndexPackedRuns() {
    (void)st_.IndexPackedRuns(unindexed_);
    unindexed_.clear();
  }

  // A run is due now (ready), later (a timer), or not.
  void Consider(const store::RunRecord& r, int64_t now) {
    if (running_.count(r.id) || queued_.count(r.id)) return;
    auto retry = retry_at_.find(r.id);
    if (retry != retry_at_.end() && retry->second > now) return;  // its backoff timer is set
    Result<std::optional<WakeReason>> due = DueReason(st_, r, now);
    if (!due.ok()) {
      // Damage is reported once, and the run left as it is for someone to look at.
      if (reported_damage_.insert(r.id).second) Report({WorkerEvent::kSkipped, r.id, due.status().message()});
      return;
    }
    if (due->has_value()) {
      ready_.emplace_back(r.id, WakeText(**due, r));
      queued_.insert(r.id);
      waiting_for_room_.erase(r.id);
    } else if (r.status == store::RunStatus::kQueued) {
      waiting_for_room_.emplace(r.id, r.queue);  // its queue is full, or its previous run goes on
    } else if (r.status == store::RunStatus::kSuspended && r.wake_ms > now && !r.virtual_time) {
      timers_.push({r.wake_ms, r.id, ""});
    } else if (r.status == store::RunStatus::kRunning && st_.LeaseMs() > 0) {
      LookAfterLease(r.id, now);  // its holder may be a worker on a machine that is lost
    }
  }

  void Check(const Due& d, int64_t now) {
    if (d.lease_look) lease_looks_.erase(d.run_id);
    if (!d.hint_file.empty()) st_.DropWakeHint({d.at, d.run_id, d.hint_file});
    if (running_.count(d.run_id) || queued_.count(d.run_id)) return;
    Result<store::RunRecord> r = st_.ReadRun(d.run_id);
    if (!r.ok()) {
      if (!r.status().IsNotFound() && reported_damage_.insert(d.run_id).second)
        Report({WorkerEvent::kSkipped, d.run_id, r.status().message()});
      return;
    }
    Consider(*r, now);
  }

  // Forks a child that executes the runs it is given (Child); null if it could not.
  Child* Spawn(const std::string& id) {
    if (!prepared_ && opt_.prepare) opt_.prepare();
    prepared_ = true;
    int err[2] = {-1, -1}, cmd[2] = {-1, -1}, result[2] = {-1, -1};
    if (::pipe2(err, O_CLOEXEC) != 0 || ::pipe2(cmd, O_CLOEXEC) != 0 || ::pipe2(result, O_CLOEXEC) != 0) {
      const int e = errno;
      for (int fd : {err[0], err[1], cmd[0], cmd[1], result[0], result[1]})
        if (fd >= 0) ::close(fd);
      Report({WorkerEvent::kSkipped, id, fmt::format("cannot start a process: {}", std::strerror(e))});
      return nullptr;
    }
    std::fflush(nullptr);  // nothing buffered is written twice
    pid_t pid = ::fork();
    if (pid == 0) {
      if (opt_.child_stdout_to_stderr) ::dup2(STDERR_FILENO, STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::signal(SIGPIPE, SIG_DFL);  // the worker ignores it (a child may die while idle)
      // Its pipes as descriptors 3 and 4 (close-on-exec: not its commands'), then the
      // worker's inotify, pipes and pidfds closed: they are not the child's.
      int in = ::fcntl(cmd[0], F_DUPFD, 5), out = ::fcntl(result[1], F_DUPFD, 5);
      if (in < 0 || out < 0 || ::dup3(in, 3, O_CLOEXEC) < 0 || ::dup3(out, 4, O_CLOEXEC) < 0) ::_exit(kCannotStart);
      CloseFrom(5);
      ExecuteRuns(3, 4);
    }
    for (int fd : {err[1], cmd[0], result[1]}) ::close(fd);
    if (pid < 0) {
      for (int fd : {err[0], cmd[1], result[0]}) ::close(fd);
      Report({WorkerEvent::kSkipped, id, fmt::format("cannot start a process: {}", std::strerror(errno))});
      return nullptr;
    }
    ::fcntl(err[0], F_SETFL, O_NONBLOCK);
    ::fcntl(result[0], F_SETFL, O_NONBLOCK);
    Child& c = children_[pid];
    c.pid = pid;
    c.err_fd = err[0];
    c.cmd_fd = cmd[1];
    c.result_fd = result[0];
    c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    return &c;
  }

  // The child's loop: a run id per line in, its exit code per line out; it ends when its
  // command pipe closes, or after a stop was asked (SIGTERM: the run stopped at its next
  // checkpoint).
  [[noreturn]] void ExecuteRuns(int in, int out) {
    std::string id;
    for (char ch;;) {
      ssize_t n = ::read(in, &ch, 1);
      if (n < 0 && errno == EINTR) {
        if (opt_.drain && opt_.drain->load()) ::_exit(0);
        continue;
      }
      if (n <= 0) ::_exit(0);
      if (ch != '\n') {
        id.push_back(ch);
        continue;
      }
      int code = opt_.execute(id);
      std::fflush(nullptr);
      std::string line = fmt::format("{}\n", code);
      if (::write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(code);
      if (opt_.drain && opt_.drain->load()) ::_exit(0);
      id.clear();
    }
  }

  void Start(const std::string& id, const std::string& why) {
    // Workers on other machines pass over a run claimed here (its child takes the claim over).
    Result<bool> claimed = st_.ClaimRun(id);
    if (!claimed.ok()) {
      Report({WorkerEvent::kSkipped, id, claimed.status().message()});
      return;
    }
    if (!*claimed) {  // another worker executes it
      LookAfterLease(id, NowMs());
      return;
    }
    Child* c = nullptr;
    for (auto& [pid, child] : children_)
      if (child.run.empty() && child.cmd_fd >= 0) c = &child;
    if (!c && !(c = Spawn(id))) return;
    std::string line = id + "\n";
    if (::write(c->cmd_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      // It died while idle (its end is read with its pidfd): this run goes to another.
      CloseCommands(*c);
      ready_.emplace_front(id, why);
      queued_.insert(id);
      return;
    }
    c->run = id;
    c->tail.clear();
    c->partial.clear();
    running_[id] = c->pid;
    ++sum_->started;
    WorkerReport r{WorkerEvent::kStarted, id, why};
    r.pid = c->pid;
    Report(r);
    if (opt_.drain && opt_.drain->load()) AskToStop(*c);
  }

  // SIGTERM once: the run stops at its next checkpoint (a second would end the child).
  void AskToStop(Child& c) {
    if (c.asked_to_stop) return;
    c.asked_to_stop = true;
    ::kill(c.pid, SIGTERM);
  }

  // Closes every descriptor from `first` on (in a child, before it takes runs).
  static void CloseFrom(int first) {
    if (::close_range(first, ~0U, 0) == 0) return;
    // No close_range (a kernel before 5.9, a seccomp filter): one by one, up to the limit.
    long last = std::min<long>(::sysconf(_SC_OPEN_MAX), 1 << 16);
    for (int fd = first; fd < last; ++fd) ::close(fd);
  }

  void CloseCommands(Child& c) {
    if (c.cmd_fd >= 0) ::close(c.cmd_fd);
    c.cmd_fd = -1;
  }

  // Every child told to exit (its command pipe closed), and waited for.
  void StopChildren() {
    for (auto& [pid, c] : children_) CloseCommands(c);
    for (auto& [pid, c] : children_) {
      if (!c.reaped_status) {
        int status;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
      }
      for (int fd : {c.err_fd, c.result_fd, c.pidfd})
        if (fd >= 0) ::close(fd);
    }
    children_.clear();
  }

  // Sleeps until a timer is due, a hint or a child's output comes, or a child ends.
  Status Wait(bool draining, int64_t now) {
    int timeout = -1;
    if (!draining) {
      int64_t until = INT64_MAX;
      if (!timers_.empty()) until = timers_.top().at;
      if (!opt_.once) until = std::min({until, last_scan_ms_ + opt_.rescan_ms, next_schedule_ms_});
      if (!ready_.empty() && static_cast<int>(running_.size()) < opt_.concurrency) until = now;
      if (opt_.once && running_.empty()) until = now;
      if (until != INT64_MAX) timeout = static_cast<int>(std::clamp<int64_t>(until - now, 0, 60'000));
    }
    std::vector<pollfd> fds;
    std::vector<pid_t> owners;  // the child of each fd (0 for inotify)
    fds.push_back({wake_watch_ ? wake_watch_->fd() : inotify_, POLLIN, 0});  // -1 (ignored) while rewatching
    if (st_.kind() != store::StoreKind::kFolder && !wake_watch_) timeout = timeout < 0 ? 1000 : std::min(timeout, 1000);
    owners.push_back(0);
    for (auto& [pid, c] : children_)
      for (int fd : {c.err_fd, c.result_fd, c.pidfd})
        if (fd >= 0) fds.push_back({fd, POLLIN, 0}), owners.push_back(pid);
    // Without pidfds (an old kernel), children are reaped by polling.
    if (std::any_of(children_.begin(), children_.end(), [](auto& e) { return e.second.pidfd < 0; }))
      timeout = timeout < 0 ? 20 : std::min(timeout, 20);
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0) {
      if (errno == EINTR) return Status::Ok();  // a signal: the drain flag may be set
      return Status::IOError(fmt::format("poll: {}", std::strerror(errno)));
    }
    if (fds[0].revents & POLLIN) ReadHints();
    std::set<pid_t> exited;
    std::vector<std::string> ended;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      Child& c = children_[owners[i]];
      if (fds[i].fd == c.err_fd) ReadStderr(c);
      else if (fds[i].fd == c.result_fd) ReadResults(c, draining, &ended);
      else exited.insert(owners[i]);
    }
    for (auto& [pid, c] : children_)
      if (c.pidfd < 0) {
        int status;
        if (::waitpid(pid, &status, WNOHANG) == pid) exited.insert(pid), c.reaped_status = status;
      }
    for (pid_t pid : exited) {
      Child& c = children_[pid];
      ReadResults(c, draining, &ended);  // an answer written before it exited
      int status = c.reaped_status.value_or(0);
      if (!c.reaped_status)
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
      if (!c.run.empty()) {  // it died executing a run
        ReadStderr(c);  // what is left (a grandchild may hold the pipe open: do not wait)
        std::string id = std::move(c.run);
        c.run.clear();
        Finish(id, c, status);
        ended.push_back(id);
      }
      for (int fd : {c.err_fd, c.result_fd, c.pidfd, c.cmd_fd})
        if (fd >= 0) ::close(fd);
      children_.erase(pid);
    }
    if (unindexed_.empty()) unindexed_since_ms_ = NowMs();
    unindexed_.insert(unindexed_.end(), ended.begin(), ended.end());
    // A slot may be free now, or a run that queued runs wait for may have ended.
    if (!ended.empty()) TryWaitingForRoom();
    return Status::Ok();
  }

  // The queued runs that could not start (their queue full, or their previous run going
  // on), looked at again: every one; or (`queue`) those of one queue, in id order (a
  // submission's id sorts by its time), until `room` of them are ready: a slot given back
  // elsewhere starts one run here, not as many as would fit.
  void TryWaitingForRoom(const std::string* queue = nullptr, int room = INT_MAX) {
    std::map<std::string, std::string> waiting;
    waiting.swap(waiting_for_room_);
    for (const auto& [id, q] : waiting) {
      if ((queue && q != *queue) || room <= 0) {
        waiting_for_room_.emplace(id, q);  // not looked at now
        continue;
      }
      const size_t before = ready_.size();
      Check({0, id, ""}, NowMs());
      if (ready_.size() > before) --room;
    }
  }

  void ReadHints() {
    if (wake_watch_) {
      std::vector<store::Store::WakeHint> hints;
      store::Store::WakeWatch::News news;
      if (Status s = wake_watch_->Take(&hints, &news); !s.ok()) {
        Report({WorkerEvent::kSkipped, "", "wake notifications: " + s.message()});
        wake_watch_.reset();  // watched again by the loop (Rewatch), once the database answers
        return;
      }
      for (auto& h : hints) timers_.push({h.wake_ms, h.run_id, h.file});
      if (news.schedules_changed) next_schedule_ms_ = 0;  // look again now
      for (const auto& [queue, freed] : news.slots_freed) TryWaitingForRoom(&queue, freed);  // given back elsewhere
      return;
    }
    alignas(inotify_event) char buf[16384];
    for (;;) {
      ssize_t n = ::read(inotify_, buf, sizeof buf);
      if (n <= 0) break;
      for (char* p = buf; p < buf + n;) {
        auto* e = reinterpret_cast<inotify_event*>(p);
        if (e->mask & IN_Q_OVERFLOW) Scan(Records::kEvery);  // events were lost: look at everything
        if (e->wd == schedules_watch_) next_schedule_ms_ = 0;  // look again now
        store::Store::WakeHint h;
        if (e->len > 0 && store::Store::ParseWakeHint(e->name, &h)) timers_.push({h.wake_ms, h.run_id, h.file});
        p += sizeof(inotify_event) + e->len;
      }
    }
  }

  // What the pipe `*fd` holds now (non-blocking); at its end or on an error, it is closed
  // and *fd set to -1.
  static std::string ReadAvailable(int* fd) {
    std::string got;
    char buf[4096];
    while (*fd >= 0) {
      ssize_t n = ::read(*fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0 || errno != EAGAIN) {
          ::close(*fd);
          *fd = -1;
        }
        break;
      }
      got.append(buf, n);
    }
    return got;
  }

  // Exit codes from child `c`: each ends the run it executes, as its process's exit would.
  void ReadResults(Child& c, bool draining, std::vector<std::string>* ended) {
    c.results += ReadAvailable(&c.result_fd);
    for (size_t nl; (nl = c.results.find('\n')) != std::string::npos; c.results.erase(0, nl + 1)) {
      int code = std::atoi(c.results.substr(0, nl).c_str());
      if (c.run.empty()) continue;
      ReadStderr(c);  // written before the answer: this run's
      std::string id = std::move(c.run);
      c.run.clear();
      Finish(id, c, W_EXITCODE(code, 0));
      ended->push_back(id);
      if (++c.runs >= kRunsPerChild || draining || (opt_.drain && opt_.drain->load())) CloseCommands(c);
    }
  }

  void ReadStderr(Child& c) {
    std::string got = ReadAvailable(&c.err_fd);
    if (got.empty()) return;
    c.tail += got;
    if (c.tail.size() > 2 * kStderrTail) c.tail.erase(0, c.tail.size() - kStderrTail);
    c.partial += got;
    for (size_t nl; (nl = c.partial.find('\n')) != std::string::npos; c.partial.erase(0, nl + 1))
      listener_->ChildStderr(c.run, std::string_view(c.partial).substr(0, nl));
  }

  // Run `id` ended in child `c`, as a process ending with wait status `status` would.
  void Finish(const std::string& id, Child& c, int status) {
    running_.erase(id);
    if (!c.partial.empty()) listener_->ChildStderr(id, c.partial);
    c.partial.clear();
    if (c.tail.size() > kStderrTail) c.tail.erase(0, c.tail.size() - kStderrTail);

    Result<store::RunRecord> r = st_.ReadRun(id);
    const bool signaled = WIFSIGNALED(status);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == opt_.deferred_exit) {  // its queue was full after all: when a slot frees up
      waiting_for_room_.emplace(id, r.ok() ? r->queue : "");
      return;
    }
    if (code == opt_.damaged_exit && r.ok() && r->status != store::RunStatus::kCompleted &&
        r->status != store::RunStatus::kFailed && r->status != store::RunStatus::kCancelled) {
      std::string last = c.tail;
      while (!last.empty() && last.back() == '\n') last.pop_back();
      // Reported once; looked at again a minute later (an I/O error, a full disk, exit 3
      // too, may pass; a repaired run goes on), never counted as a crash.
      if (reported_damage_.insert(id).second)
        Report({WorkerEvent::kSkipped, id, last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1)});
      RetryAfter(id, opt_.max_backoff_ms);
      return;
    }
    if (!signaled && r.ok()) {
      const bool clean = std::find(opt_.clean_exits.begin(), opt_.clean_exits.end(), code) != opt_.clean_exits.end();
      WorkerReport done{WorkerEvent::kCompleted, id, r->detail};
      switch (r->status) {
        case store::RunStatus::kSuspended: done.event = WorkerEvent::kSuspended; break;
        case store::RunStatus::kCompleted: done.event = WorkerEvent::kCompleted; break;
        case store::RunStatus::kFailed: done.event = WorkerEvent::kFailed; break;
        case store::RunStatus::kCancelled: done.event = WorkerEvent::kCancelled; break;
        default: {
          int64_t pid = 0;
          if (st_.IsRunLive(id, &pid)) {  // another process took it first
            Report({WorkerEvent::kSkipped, id, fmt::format("process {} executes it", pid)});
            return;
          }
          done.event = WorkerEvent::kCrashed;
        }
      }
      if (done.event != WorkerEvent::kCrashed && (clean || r->status != store::RunStatus::kSuspended)) {
        crashes_.erase(id);  // the run's process cleared runs/ID/crashes as it ended
        retry_at_.erase(id);
        held_elsewhere_.erase(id);
        if (done.event == WorkerEvent::kSuspended) ++sum_->suspended;
        else if (done.event == WorkerEvent::kCompleted) ++sum_->completed;
        else ++sum_->failed;
        done.pid = c.pid;
        Report(done);
        return;
      }
    }
    if (int64_t pid = 0; !signaled && st_.IsRunLive(id, &pid)) {  // it could not take the run: another process has it
      Report({WorkerEvent::kSkipped, id, fmt::format("process {} executes it", pid)});
      // The hint that woke us is gone: look again, 1 s, 2 s, ... up to a minute later
      // while the other process keeps it (it writes its own hint when it lets go).
      const int busy = ++held_elsewhere_[id];
      RetryAfter(id, std::min(opt_.first_backoff_ms << std::min(busy - 1, 16), opt_.max_backoff_ms));
      return;
    }
    Crashed(id, c, signaled ? fmt::format("killed by signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)))
                            : fmt::format("exit code {}", code));
  }

  void Crashed(const std::string& id, const Child& c, const std::string& how) {
    std::string last = c.tail;
    while (!last.empty() && last.back() == '\n') last.pop_back();
    std::string last_line = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
    Result<int> n = st_.RecordCrash(id, c.tail);
    int count = n.ok() ? *n : ++crashes_[id];
    WorkerReport r{WorkerEvent::kCrashed, id, last_line.empty() ? how : how + ": " + last_line};
    r.crashes = count;
    if (count >= opt_.max_crashes) {
      st_.SetPoisoned(id, fmt::format("{} crashes in a row; the last: {}\n{}", count, how, c.tail));
      r.event = WorkerEvent::kPoisoned;
      ++sum_->poisoned;
      Report(r);
      return;
    }
    int64_t backoff = opt_.first_backoff_ms;
    for (int i = 1; i < count && backoff < opt_.max_backoff_ms; ++i) backoff *= 2;
    backoff = std::min(backoff, opt_.max_backoff_ms);
    r.retry_in_ms = backoff;
    ++sum_->crashed;
    Report(r);
    RetryAfter(id, backoff);
  }

  // A run another process holds under a lease: looked at again once the lease could have
  // run out (its holder renews it a third of the way through; a holder gone stops).
  // One look pending per run, however often the run is considered meanwhile.
  void LookAfterLease(const std::string& id, int64_t now) {
    if (lease_looks_.insert(id).second) timers_.push({now + st_.LeaseMs() + 100, id, "", true});
  }

  void RetryAfter(const std::string& id, int64_t delay_ms) {
    if (opt_.once) return;
    retry_at_[id] = NowMs() + delay_ms;
    timers_.push({NowMs() + delay_ms, id, ""});
  }

  const WorkerOptions& opt_;
  WorkerListener* listener_;
  WorkerSummary* sum_;
  store::Store st_;
  int inotify_ = -1;
  std::unique_ptr<store::Store::WakeWatch> wake_watch_;  // instead of inotify_, in a store without folders
  int schedules_watch_ = -1;
  int64_t next_schedule_ms_ = INT64_MAX;
  bool prepared_ = false;
  int64_t last_scan_ms_ = 0;
  std::vector<std::string> unindexed_;  // runs whose children ended since the last IndexPackedRuns
  int64_t unindexed_since_ms_ = 0;
  std::map<pid_t, Child> children_;
  std::map<std::string, pid_t> running_;  // each run executing, and its child
  std::deque<std::pair<std::string, std::string>> ready_;  // run id, why: started in this order
  std::set<std::string> queued_;                           // the ids in ready_
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> timers_;
  std::map<std::string, int> crashes_;       // when the store cannot count them
  std::map<std::string, int64_t> retry_at_;  // a crashed run's next try
  std::map<std::string, int> held_elsewhere_;  // children in a row that found the run held by another process
  std::set<std::string> reported_damage_;
  std::map<std::string, std::string> waiting_for_room_;  // queued runs that could not start, to their queue
  std::set<std::string> lease_looks_;       // runs with a look after another's lease pending (LookAfterLease)
};

}  // namespace

Status RunWorker(const WorkerOptions& options, WorkerListener* listener, WorkerSummary* summary) {
  *summary = WorkerSummary{};
  Result<store::Store> st = store::Store::Open(options.store_dir, true);
  if (!st.ok()) return st.status();
  Pool pool(options, listener, summary, std::move(*st));
  return pool.Run();
}

}  // namespace flow::runtime
