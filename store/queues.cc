// Queue caps and slots of the folder store (store/queues.h, store/file_store.h).
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
#include "store/file_store.h"
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

constexpr int kSlotHeld = -1, kSlotUnopened = -2;

// Opens slot `index` of `queue` (`create`: made if missing) and takes it (LOCK_NB):
// kSlotHeld if another holds it, kSlotUnopened if it cannot be opened (a slot file that
// does not exist is held by none).
int TakeSlot(const std::string& store_dir, const std::string& queue, uint32_t index, bool create) {
  std::string path = QueueSlotPath(store_dir, queue, index);
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
  if (fd < 0) return kSlotUnopened;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return kSlotHeld;
  }
  return fd;
}

class FileQueueSlot final : public QueueSlot {
 public:
  FileQueueSlot(int fd, uint32_t index) : QueueSlot(index), fd_(fd) {}
  ~FileQueueSlot() override { close(fd_); }  // releases the flock

 private:
  int fd_;
};

}  // namespace

bool IsValidQueueName(std::string_view name) { return IsValidRunId(name); }

Result<uint32_t> FileStore::ReadQueueCap(const std::string& queue) const {
  std::ifstream in(ConfigPath(dir_, queue), std::ios::binary);
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

Status FileStore::WriteQueueCap(const std::string& queue, uint32_t cap) {
  if (cap == 0) {  // no cap: no config (its slot files stay, unused)
    if (unlink(ConfigPath(dir_, queue).c_str()) != 0 && errno != ENOENT)
      return Status::IOError(fmt::format("cannot remove the cap of queue {}: {}", queue, std::strerror(errno)));
    return Status::Ok();
  }
  if (Status s = MakeDirs(dir_, queue); !s.ok()) return s;
  std::string p;
  PutVarint(&p, cap);
  return WriteFileAtomically(ConfigPath(dir_, queue), SealRecord(kQueueConfigVersion, p));
}

Status FileStore::ListCappedQueues(std::vector<std::string>* out) const {
  out->clear();
  DIR* d = opendir(QueuesPath(dir_).c_str());
  if (!d) return Status::Ok();
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    struct stat st;
    if (IsValidQueueName(name) && stat(ConfigPath(dir_, name).c_str(), &st) == 0) out->push_back(name);
  }
  closedir(d);
  std::sort(out->begin(), out->end());
  return Status::Ok();
}

Status FileStore::TryTakeQueueSlot(const std::string& queue, uint32_t cap, std::unique_ptr<QueueSlot>* slot) {
  slot->reset();
  if (Status s = MakeDirs(dir_, queue); !s.ok()) return s;
  for (uint32_t i = 0; i < cap; ++i) {
    if (int fd = TakeSlot(dir_, queue, i, true); fd >= 0) {
      *slot = std::make_unique<FileQueueSlot>(fd, i);
      return Status::Ok();
    }
  }
  return Status::Ok();
}

// The slot files there are, not every slot below the cap: a cap may be large, and a slot
// never taken has no file.
uint32_t FileStore::CountHeldQueueSlots(const std::string& queue, uint32_t cap) const {
  uint32_t held = 0;
  DIR* d = opendir(QueuePath(dir_, queue).c_str());
  if (!d) return 0;
  const std::string_view prefix = kQueueSlotPrefix;
  while (dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (!name.starts_with(prefix) || name.size() == prefix.size() || name.size() > prefix.size() + 10 ||
        (name[prefix.size()] == '0' && name.size() > prefix.size() + 1))  // slot.K as written: no leading 0
      continue;
    uint64_t index = 0;
    bool digits = true;
    for (char c : name.substr(prefix.size())) {
      digits = digits && c >= '0' && c <= '9';
      index = index * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!digits || index >= cap) continue;
    int fd = TakeSlot(dir_, queue, static_cast<uint32_t>(index), false);
    if (fd == kSlotHeld) ++held;
    else if (fd >= 0) close(fd);
  }
  closedir(d);
  return held;
}

}  // namespace flow::store
