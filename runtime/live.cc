// The live-run socket (live.h). Requests are one line; answers (docs/checkpoint.md, "Live runs"):
//   "progress\n"          -> "effects N checkpoint C\n"
//   "snapshot PREFIXES\n" -> (klen+1:varint key vlen:varint value)* 0:varint xxh3:u64
// PREFIXES: the first bytes of the keys wanted, or "*" for every key; one LevelDB iterator
// (one snapshot) reads them all, so what a reader gets is one consistent state.
#include "runtime/live.h"

#include <fcntl.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>

#include "store/keys.h"
#include "vm/base/coding.h"

namespace flow::runtime {

namespace {

// The socket's address: a name in the abstract namespace (nothing on disk, so nothing left
// behind by a process killed -9, and no limit from the store's path length) made of a
// hash of the run folder's real path. *size is the address length to pass.
bool SocketAddress(const std::string& run_dir, sockaddr_un* addr, socklen_t* size) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (run_dir.empty()) return false;  // a store without folders: its readers read the database (Store::ReadableWhileLive)
  char* real = realpath(run_dir.c_str(), nullptr);
  if (!real) return false;
  XXH128_hash_t h = XXH3_128bits(real, std::strlen(real));
  std::free(real);
  char name[64];
  int n = std::snprintf(name, sizeof(name), "flow-live/%016llx%016llx", static_cast<unsigned long long>(h.high64),
                        static_cast<unsigned long long>(h.low64));
  std::memcpy(addr->sun_path + 1, name, static_cast<size_t>(n));  // sun_path[0] = 0: abstract
  *size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  return true;
}

// The pid and uid of the process at the other end of `fd`.
bool Peer(int fd, ucred* cred) {
  socklen_t len = sizeof(*cred);
  return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0;
}

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void SetTimeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Connects to the run's socket, checks that the process answering is `pid` (the one that
// holds the run's lock: no other process can pose as the run), and sends `request`; -1 if
// no such process answers.
int Connect(const std::string& run_dir, int64_t pid, const std::string& request) {
  sockaddr_un addr;
  socklen_t size;
  if (!SocketAddress(run_dir, &addr, &size)) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ucred peer;
  bool ok = fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), size) == 0 && Peer(fd, &peer) &&
            peer.pid == pid;
  if (ok) {
    SetTimeout(fd, 10);
    ok = SendAll(fd, request.data(), request.size());
  }
  if (!ok && fd >= 0) close(fd);
  return ok ? fd : -1;
}

bool ReceiveAll(int fd, std::string* out) {
  char buf[1 << 16];
  for (;;) {
    ssize_t r = recv(fd, buf, sizeof(buf), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) return true;
    out->append(buf, static_cast<size_t>(r));
  }
}

}  // namespace

LiveServer::LiveServer(const std::string& run_dir, store::RunDb* db, const std::atomic<uint64_t>* effects,
                       const std::atomic<uint64_t>* checkpoint)
    : db_(db), effects_(effects), checkpoint_(checkpoint) {
  sockaddr_un addr;
  socklen_t size;
  if (!SocketAddress(run_dir, &addr, &size)) return;
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  bool ok = listen_fd_ >= 0 && bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), size) == 0 &&
            listen(listen_fd_, 16) == 0 && pipe2(stop_pipe_, O_CLOEXEC) == 0;
  if (!ok) {
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  thread_ = std::thread([this] { Serve(); });
}

LiveServer::~LiveServer() {
  if (listen_fd_ < 0) return;
  char stop = 1;
  (void)!write(stop_pipe_[1], &stop, 1);
  thread_.join();
  close(listen_fd_);
  close(stop_pipe_[0]);
  close(stop_pipe_[1]);
}

void LiveServer::Serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    SetTimeout(fd, 5);
    Answer(fd);
    close(fd);
  }
}

void LiveServer::Answer(int fd) {
  // Only the run's owner (or root) reads it, as its folder's permissions would have it.
  ucred peer;
  if (!Peer(fd, &peer) || (peer.uid != geteuid() && peer.uid != 0)) return;
  std::string request;
  char c;
  while (request.size() < 256 && recv(fd, &c, 1, 0) == 1 && c != '\n') request.push_back(c);
  if (request == "progress") {
    std::string line = "effects " + std::to_string(effects_->load()) + " checkpoint " +
                       std::to_string(checkpoint_->load()) + "\n";
    SendAll(fd, line.data(), line.size());
    return;
  }
  constexpr std::string_view kSnapshot = "snapshot ";
  if (request.rfind(kSnapshot, 0) != 0) return;
  const std::string prefixes = request.substr(kSnapshot.size());
  std::string out;
  XXH3_state_t* hash = XXH3_createState();
  XXH3_64bits_reset(hash);
  bool sent = true;
  auto flush = [&] {
    XXH3_64bits_update(hash, out.data(), out.size());
    sent = sent && SendAll(fd, out.data(), out.size());
    out.clear();
  };
  db_->ScanAll([&](std::string_view k, std::string_view v) {
    if (!sent || k.empty() || (prefixes != "*" && prefixes.find(k[0]) == std::string::npos)) return;
    PutVarint(&out, k.size() + 1);
    out.append(k);
    PutVarint(&out, v.size());
    out.append(v);
    if (out.size() > (1 << 16)) flush();
  });
  PutVarint(&out, 0);
  flush();
  PutFixed64(&out, XXH3_64bits_digest(hash));
  XXH3_freeState(hash);
  if (sent) SendAll(fd, out.data(), out.size());
}

Status AskLiveProgress(const std::string& run_dir, int64_t pid, LiveProgress* out) {
  int fd = Connect(run_dir, pid, "progress\n");
  if (fd < 0) return Status::NotFound("no live process");
  std::string answer;
  bool ok = ReceiveAll(fd, &answer);
  close(fd);
  unsigned long long effects, checkpoint;
  if (!ok || std::sscanf(answer.c_str(), "effects %llu checkpoint %llu", &effects, &checkpoint) != 2)
    return Status::NotFound("no answer from the live process");
  out->effects = effects;
  out->checkpoint = checkpoint;
  return Status::Ok();
}

Status TakeLiveSnapshot(const std::string& run_dir, int64_t pid, const std::string& prefixes,
                        std::unique_ptr<leveldb::Env>* env, std::unique_ptr<store::RunDb>* db) {
  int fd = Connect(run_dir, pid, "snapshot " + (prefixes.empty() ? std::string("*") : prefixes) + "\n");
  if (fd < 0) return Status::NotFound("no live process");
  std::string answer;
  bool ok = ReceiveAll(fd, &answer);
  close(fd);
  if (!ok) return Status::IOError("the live process did not answer in time");
  if (answer.size() < 9) return Status::NotFound("the live process stopped while answering");
  const size_t body = answer.size() - 8;
  if (XXH3_64bits(answer.data(), body) != DecodeFixed64(reinterpret_cast<const uint8_t*>(answer.data() + body)))
    return Status::Corruption("the live process's answer is damaged");
  env->reset(leveldb::NewMemEnv(leveldb::Env::Default()));
  Result<std::unique_ptr<store::RunDb>> opened = store::RunDb::Open("/live", {.create = true, .env = env->get()});
  if (!opened.ok()) return opened.status();
  store::Batch batch;
  Reader r(std::string_view(answer.data(), body));
  for (;;) {
    uint64_t klen = r.Varint();
    if (r.failed() || klen == 0) break;
    std::string_view key = r.Raw(klen - 1);
    std::string_view value = r.Bytes();
    if (r.failed()) break;
    batch.Put(key, value);
  }
  if (r.failed() || !r.at_end()) return Status::Corruption("the live process's answer is malformed");
  if (Status s = (*opened)->Write(batch, false); !s.ok()) return s;
  *db = std::move(opened.value());
  return Status::Ok();
}

}  // namespace flow::runtime
