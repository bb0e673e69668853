// Queue caps and slots (store/queues.h).
#include "store/queues.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "store/keys.h"
#include "store/pg/connection.h"
#include "store/store.h"
#include "vm/base/record.h"

namespace flow::store {

namespace {

constexpr uint8_t kQueueConfigVersion = 1;  // config := cap:varint (docs/checkpoint.md, "Queues")

std::string ConfigPath(const std::string& store_dir, const std::string& queue) {
  return QueuePath(store_dir, queue) + "/" + kQueueConfigFile;
}

Status MakeDirs(const std::string& store_dir, const std::string& queue) {
  for (const std::string& dir : {QueuesPath(store_dir), QueuePath(store_dir, queue)})
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return Status::IOError(fmt::format("cannot create {}: {}", dir, std::strerror(errno)));
  return Status::Ok();
}

// Opens slot `index` of `queue` and takes it (LOCK_NB): -1 if it is held (or cannot be opened).
int TakeSlot(const std::string& store_dir, const std::string& queue, uint32_t index) {
  std::string path = QueueSlotPath(store_dir, queue, index);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

bool IsValidQueueName(std::string_view name) { return IsValidRunId(name); }

Result<uint32_t> ReadQueueCap(const std::string& store_dir, const std::string& queue) {
  std::ifstream in(ConfigPath(store_dir, queue), std::ios::binary);
  if (!in) return uint32_t{0};
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string bytes = buf.str();
  std::string_view payload;
  if (Status s = OpenRecord(bytes, kQueueConfigVersion, "the config of queue " + queue, &payload); !s.ok()) return s;
  Reader r(payload);
  uint64_t cap = r.Varint();
  if (r.failed() || !r.at_end() || cap > UINT32_MAX)
    return Status::Corruption(fmt::format("the config of queue {} is malformed", queue));
  return static_cast<uint32_t>(cap);
}

Status WriteQueueCap(const std::string& store_dir, const std::string& queue, uint32_t cap) {
  if (!IsValidQueueName(queue)) return Status::InvalidArgument(fmt::format("`{}` is not a queue name", queue));
  if (pg::IsPostgresAddress(store_dir))  // its queues run without caps, which are files (slots flock'ed)
    return Status::NotSupported("queue caps are not kept in a PostgreSQL store yet: its queues have none");
  if (cap == 0) {  // no cap: no config (its slot files stay, unused)
    if (unlink(ConfigPath(store_dir, queue).c_str()) != 0 && errno != ENOENT)
      return Status::IOError(fmt::format("cannot remove the cap of queue {}: {}", queue, std::strerror(errno)));
    return Status::Ok();
  }
  if (Status s = MakeDirs(store_dir, queue); !s.ok()) return s;
  std::string p;
  PutVarint(&p, cap);
  return WriteFileAtomically(ConfigPath(store_dir, queue), SealRecord(kQueueConfigVersion, p));
}

std::vector<std::string> ListCappedQueues(const std::string& store_dir) {
  std::vector<std::string> out;
  DIR* d = opendir(QueuesPath(store_dir).c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    struct stat st;
    if (IsValidQueueName(name) && stat(ConfigPath(store_dir, name).c_str(), &st) == 0) out.push_back(name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

QueueSlot::~QueueSlot() {
  if (fd_ >= 0) close(fd_);  // releases the flock
}

Status TryTakeQueueSlot(const std::string& store_dir, const std::string& queue, uint32_t cap,
                        std::unique_ptr<QueueSlot>* slot) {
  slot->reset();
  if (Status s = MakeDirs(store_dir, queue); !s.ok()) return s;
  for (uint32_t i = 0; i < cap; ++i) {
    if (int fd = TakeSlot(store_dir, queue, i); fd >= 0) {
      slot->reset(new QueueSlot(fd, i));
      return Status::Ok();
    }
  }
  return Status::Ok();
}

uint32_t CountHeldQueueSlots(const std::string& store_dir, const std::string& queue, uint32_t cap) {
  uint32_t held = 0;
  for (uint32_t i = 0; i < cap; ++i) {
    int fd = TakeSlot(store_dir, queue, i);
    if (fd < 0) ++held;
    else close(fd);
  }
  return held;
}

}  // namespace flow::store
