// RunDb on LevelDB, opened with paranoid checks and read with checksums verified: a damaged
// database is reported, never repaired silently and never read as an older state.
#include <leveldb/db.h>
#include <leveldb/env.h>
#include <leveldb/helpers/memenv.h>
#include <leveldb/write_batch.h>

#include <algorithm>
#include <cstdarg>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "store/keys.h"
#include "store/leveldb_log.h"
#include "store/store.h"

namespace flow::store {

namespace {

// LevelDB's informational log (LOG, rotated to LOG.old at each open) is not written: two
// files created or renamed per open and a disk block per run, for messages nobody reads.
// Errors reach us as a Status either way.
class NoInfoLog : public leveldb::Logger {
 public:
  void Logv(const char*, va_list) override {}
};

// Reopening reuses a log up to this size; a bigger memtable would only move the cost of
// the replay to the next open.
constexpr uint64_t kMaxReplayedLogBytes = 64 << 20;

// The files of a database, read from disk; everything written goes to memory instead.
// LevelDB has no read-only open: DB::Open replays the log into a new table, writes a new
// manifest, log and CURRENT, and deletes what they replace. Here those writes land in a
// MemEnv and shadow the files on disk, and deletes only hide them, so reading a run
// (flow inspect, history, trace, export) leaves its database byte for byte as it was.
class ReadOnlyEnv : public leveldb::EnvWrapper {
 public:
  explicit ReadOnlyEnv(leveldb::Env* base) : EnvWrapper(base), memory_(leveldb::NewMemEnv(base)) {}

  leveldb::Status NewSequentialFile(const std::string& f, leveldb::SequentialFile** r) override {
    switch (Where(f)) {
      case kMemory: return memory_->NewSequentialFile(f, r);
      case kHidden: return leveldb::Status::NotFound(f);
      default: return target()->NewSequentialFile(f, r);
    }
  }
  leveldb::Status NewRandomAccessFile(const std::string& f, leveldb::RandomAccessFile** r) override {
    switch (Where(f)) {
      case kMemory: return memory_->NewRandomAccessFile(f, r);
      case kHidden: return leveldb::Status::NotFound(f);
      default: return target()->NewRandomAccessFile(f, r);
    }
  }
  leveldb::Status NewWritableFile(const std::string& f, leveldb::WritableFile** r) override {
    SetWhere(f, kMemory);
    return memory_->NewWritableFile(f, r);
  }
  leveldb::Status NewAppendableFile(const std::string& f, leveldb::WritableFile** r) override {
    if (Where(f) == kDisk && target()->FileExists(f)) {
      if (leveldb::Status s = CopyToMemory(f, f); !s.ok()) return s;
    }
    SetWhere(f, kMemory);
    return memory_->NewAppendableFile(f, r);
  }
  bool FileExists(const std::string& f) override {
    switch (Where(f)) {
      case kMemory: return memory_->FileExists(f);
      case kHidden: return false;
      default: return target()->FileExists(f);
    }
  }
  leveldb::Status GetChildren(const std::string& dir, std::vector<std::string>* result) override {
    std::vector<std::string> disk, memory;
    leveldb::Status s = target()->GetChildren(dir, &disk);
    if (!s.ok()) return s;
    memory_->GetChildren(dir, &memory);
    std::set<std::string> names;
    for (const auto& n : disk)
      if (Where(dir + "/" + n) != kHidden) names.insert(n);
    for (const auto& n : memory) names.insert(n);
    result->assign(names.begin(), names.end());
    return leveldb::Status::OK();
  }
  leveldb::Status RemoveFile(const std::string& f) override {
    if (Where(f) == kMemory) memory_->RemoveFile(f);
    SetWhere(f, kHidden);
    return leveldb::Status::OK();
  }
  leveldb::Status CreateDir(const std::string&) override { return leveldb::Status::OK(); }
  leveldb::Status RemoveDir(const std::string&) override { return leveldb::Status::OK(); }
  leveldb::Status GetFileSize(const std::string& f, uint64_t* size) override {
    switch (Where(f)) {
      case kMemory: return memory_->GetFileSize(f, size);
      case kHidden: return leveldb::Status::NotFound(f);
      default: return target()->GetFileSize(f, size);
    }
  }
  leveldb::Status RenameFile(const std::string& from, const std::string& to) override {
    leveldb::Status s = Where(from) == kMemory ? memory_->RenameFile(from, to) : CopyToMemory(from, to);
    if (!s.ok()) return s;
    SetWhere(to, kMemory);
    SetWhere(from, kHidden);
    return s;
  }
  leveldb::Status NewLogger(const std::string& f, leveldb::Logger** r) override { return memory_->NewLogger(f, r); }

 private:
  enum Place { kDisk, kMemory, kHidden };
  Place Where(const std::string& f) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = places_.find(f);
    return it == places_.end() ? kDisk : it->second;
  }
  void SetWhere(const std::string& f, Place p) {
    std::lock_guard<std::mutex> lock(mu_);
    places_[f] = p;
  }
  // The disk file `from`, as the memory file `to`.
  leveldb::Status CopyToMemory(const std::string& from, const std::string& to) {
    leveldb::SequentialFile* in;
    leveldb::Status s = target()->NewSequentialFile(from, &in);
    if (!s.ok()) return s;
    std::unique_ptr<leveldb::SequentialFile> in_owner(in);
    leveldb::WritableFile* out;
    if (s = memory_->NewWritableFile(to, &out); !s.ok()) return s;
    std::unique_ptr<leveldb::WritableFile> out_owner(out);
    std::string buf(1 << 16, '\0');
    for (;;) {
      leveldb::Slice chunk;
      if (s = in->Read(buf.size(), &chunk, buf.data()); !s.ok()) return s;
      if (chunk.empty()) break;
      if (s = out->Append(chunk); !s.ok()) return s;
    }
    return out->Close();
  }

  std::unique_ptr<leveldb::Env> memory_;
  std::mutex mu_;
  std::map<std::string, Place> places_;
};

// A MemEnv holding `files` in `dir`: a packed run's database (Store::ReadPacked).
Status LoadIntoMemory(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& files,
                      leveldb::Env* base, std::unique_ptr<leveldb::Env>* out) {
  std::unique_ptr<leveldb::Env> memory(leveldb::NewMemEnv(base));
  memory->CreateDir(dir);
  for (const auto& [name, bytes] : files) {
    leveldb::WritableFile* f = nullptr;
    leveldb::Status s = memory->NewWritableFile(dir + "/" + name, &f);
    if (s.ok()) s = f->Append(leveldb::Slice(bytes));
    if (s.ok()) s = f->Close();
    delete f;
    if (!s.ok()) return Status::IOError("cannot load the packed database " + dir + ": " + s.ToString());
  }
  *out = std::move(memory);
  return Status::Ok();
}

}  // namespace

Batch::Batch() : batch_(new leveldb::WriteBatch) {}
Batch::~Batch() = default;

void Batch::Put(std::string_view key, std::string_view value) {
  batch_->Put(leveldb::Slice(key.data(), key.size()), leveldb::Slice(value.data(), value.size()));
  bytes_ += key.size() + value.size();
}

void Batch::Append(const Batch& other) {
  batch_->Append(*other.batch_);
  bytes_ += other.bytes_;
}

void Batch::Clear() {
  batch_->Clear();
  bytes_ = 0;
}

void Batch::Delete(std::string_view key) {
  batch_->Delete(leveldb::Slice(key.data(), key.size()));
  bytes_ += key.size();
}

void Batch::ForEach(const std::function<void(bool put, std::string_view key, std::string_view value)>& fn) const {
  struct Each : leveldb::WriteBatch::Handler {
    const std::function<void(bool, std::string_view, std::string_view)>* fn;
    void Put(const leveldb::Slice& k, const leveldb::Slice& v) override {
      (*fn)(true, std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()));
    }
    void Delete(const leveldb::Slice& k) override { (*fn)(false, std::string_view(k.data(), k.size()), {}); }
  } each;
  each.fn = &fn;
  (void)batch_->Iterate(&each);  // a batch built here is never malformed
}

namespace {

Status ConvertStatus(const leveldb::Status& s, const std::string& dir) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption("the run database " + dir + " is damaged: " + s.ToString());
  return Status::IOError("the run database " + dir + ": " + s.ToString());
}

}  // namespace

class LevelDbRunDb final : public RunDb {
 public:
  LevelDbRunDb(leveldb::DB* db, std::string dir, std::unique_ptr<leveldb::Env> files, std::unique_ptr<leveldb::Env> overlay,
               uint64_t replayed_log_bytes)
      : files_(std::move(files)),
        overlay_(std::move(overlay)),
        db_(db),
        dir_(std::move(dir)),
        replayed_log_bytes_(replayed_log_bytes) {}
  ~LevelDbRunDb() override {
    ForgetLatestReader();  // its iterator, before the database
    delete db_;
  }

  class LevelDbCursor final : public Cursor {
   public:
    LevelDbCursor(leveldb::Iterator* it, const std::string& dir) : it_(it), dir_(dir) {}
    void Seek(std::string_view target) override { it_->Seek(leveldb::Slice(target.data(), target.size())); }
    void Next() override { it_->Next(); }
    bool Valid() const override { return it_->Valid(); }
    std::string_view key() const override { return {it_->key().data(), it_->key().size()}; }
    std::string_view value() const override { return {it_->value().data(), it_->value().size()}; }
    Status status() const override { return ConvertStatus(it_->status(), dir_); }

   private:
    std::unique_ptr<leveldb::Iterator> it_;
    const std::string& dir_;
  };

  std::unique_ptr<Cursor> NewCursor() override {
    leveldb::ReadOptions ro;
    ro.verify_checksums = true;
    return std::make_unique<LevelDbCursor>(db_->NewIterator(ro), dir_);
  }

  Status Write(const Batch& batch, bool sync) override {
    ForgetLatestReader();
    leveldb::WriteOptions wo;
    wo.sync = sync;
    return ConvertStatus(db_->Write(wo, batch.batch_.get()), dir_);
  }

  Status Get(std::string_view key, std::string* value) override {
    leveldb::ReadOptions ro;
    ro.verify_checksums = true;
    return ConvertStatus(db_->Get(ro, leveldb::Slice(key.data(), key.size()), value), dir_);
  }

  Status MoveLogToTable() override {
    // CompactRange writes the memtable to a table first; a range past every key (keys are
    // ASCII-led) then compacts nothing else.
    leveldb::Slice past_every_key("\xff");
    db_->CompactRange(&past_every_key, &past_every_key);
    leveldb::WriteBatch empty;  // a failed table write is reported by the next write
    return ConvertStatus(db_->Write(leveldb::WriteOptions(), &empty), dir_);
  }

  uint64_t replayed_log_bytes() const override { return replayed_log_bytes_; }
  uint64_t StoredBytes() override { return DirectoryBytes(dir_); }

 private:
  std::unique_ptr<leveldb::Env> files_;    // Options::files: outlives overlay_
  std::unique_ptr<leveldb::Env> overlay_;  // read_only: outlives db_
  leveldb::DB* db_;
  std::string dir_;
  uint64_t replayed_log_bytes_ = 0;
};

Result<std::unique_ptr<RunDb>> RunDb::Open(const std::string& dir, const Options& options) {
  leveldb::Options o;
  o.create_if_missing = options.create;
  o.error_if_exists = options.create;
  o.paranoid_checks = true;
  static NoInfoLog no_info_log;
  o.info_log = &no_info_log;
  // LevelDB reuses the MANIFEST and the newest log: a new database appends its first
  // version to the MANIFEST it was just created with (two fsyncs and three files fewer per
  // run start), and a reopened one keeps the replayed log as the memtable instead of
  // writing it out as a table, a new MANIFEST and CURRENT, and syncing each (four fsyncs
  // per resume of a small run; after a kill, 10 MB of state not written again first; see
  // docs/checkpoint.md, "Resume cost"). The log must first lose a record torn by a kill,
  // or the next write would follow it and the open after that would read damage
  // (RunDb.ALogEndingInATornRecordReopensAndTakesWritesAgain); a memtable big enough for
  // the whole log keeps the replay from flushing it half way.
  o.reuse_logs = options.create;
  if (options.env) o.env = options.env;
  std::unique_ptr<leveldb::Env> files;
  if (options.files) {
    if (!options.read_only || options.create) return Status::InvalidArgument("a database from memory is read only");
    if (Status s = LoadIntoMemory(dir, *options.files, o.env, &files); !s.ok()) return s;
    o.env = files.get();
  }
  std::unique_ptr<leveldb::Env> overlay;
  if (options.read_only) {
    overlay = std::make_unique<ReadOnlyEnv>(o.env);
    o.env = overlay.get();
    o.create_if_missing = o.error_if_exists = false;
  }
  uint64_t replayed_log_bytes = 0;
  if (!options.create && !options.env && !options.files) {
    uint64_t log_bytes = 0;
    bool appendable = true;
    if (Status s = MeasureNewestLog(dir, !options.read_only, &log_bytes, &appendable); !s.ok()) return s;
    if (appendable && log_bytes <= kMaxReplayedLogBytes) {
      o.reuse_logs = true;
      o.write_buffer_size = std::max<size_t>(o.write_buffer_size, 2 * log_bytes + (4 << 20));
      replayed_log_bytes = log_bytes;
    }
  }
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, dir, &db);
  if (!s.ok()) {
    if (s.IsCorruption()) return Status::Corruption("the run database " + dir + " is damaged: " + s.ToString());
    if (s.IsInvalidArgument() && !options.create)
      return Status::Corruption("the run database " + dir + " is missing: " + s.ToString());
    return Status::IOError("cannot open the run database " + dir + ": " + s.ToString());
  }
  std::unique_ptr<RunDb> run_db(new LevelDbRunDb(db, dir, std::move(files), std::move(overlay), replayed_log_bytes));
  if (!options.read_only && !options.create) {
    if (Status s = run_db->DropUnfinishedCheckpoint(); !s.ok()) return s;
  }
  return run_db;
}

RunDb::~RunDb() = default;

Status RunDb::Scan(std::string_view prefix,
                   const std::function<bool(std::string_view key, std::string_view value)>& fn) {
  std::unique_ptr<Cursor> it = NewCursor();
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    std::string_view k = it->key();
    if (k.substr(0, prefix.size()) != prefix) break;
    if (!fn(k, it->value())) break;
  }
  return it->status();
}

// How far VersionReader::Get steps forward before it seeks.
constexpr int kStepsBeforeSeek = 4;

RunDb::VersionReader::VersionReader(RunDb* db, uint32_t at) : at_(at), it_(db->NewCursor()) {}

RunDb::VersionReader::~VersionReader() = default;

Status RunDb::VersionReader::Get(std::string_view base, std::string* value, uint32_t* version) {
  target_.assign(base);
  keys_internal::AppendBigEndian(&target_, ~at_, kVersionBytes);
  // A restore reads objects mostly in key order: when a key a few steps after the last one
  // read is the first at or past the target, it is the one a Seek would find, and costs a
  // few steps instead of a search of every level (10 MB of state: about 10,000 reads). The
  // steps pass the older versions of the key read before (kept checkpoints).
  const std::string_view target(target_);
  bool found = false;
  for (int step = 0; step < kStepsBeforeSeek && it_->Valid() && it_->key() < target; ++step) {
    it_->Next();
    found = it_->Valid() ? it_->key() >= target : it_->status().ok();
  }
  if (!found) it_->Seek(target);
  if (!it_->Valid()) {
    Status s = it_->status();
    return s.ok() ? Status::NotFound("no version") : s;
  }
  std::string_view k = it_->key();
  if (k.size() != target_.size() || k.substr(0, base.size()) != base || it_->value().empty())
    return Status::NotFound("no version");
  value->assign(it_->value());
  if (version) *version = VersionOfKey(k, base.size());
  return Status::Ok();
}

std::unique_ptr<RunDb::VersionReader> RunDb::ReaderAt(uint32_t at) {
  return std::unique_ptr<VersionReader>(new VersionReader(this, at));
}

Status RunDb::ReadLatest(std::string_view base, std::string* value) {
  if (!latest_reader_) latest_reader_ = ReaderAt(kLatestCheckpoint);
  return latest_reader_->Get(base, value);
}

Status RunDb::GetAt(std::string_view base, uint32_t at, std::string* value, uint32_t* version) {
  return ReaderAt(at)->Get(base, value, version);
}

Status RunDb::ScanVersionsBefore(std::string_view base, uint32_t before,
                                 const std::function<bool(std::string_view key, std::string_view value)>& fn) {
  if (before == 0) return Status::Ok();
  std::unique_ptr<Cursor> it = NewCursor();
  const size_t size = base.size() + kVersionBytes;
  for (it->Seek(VersionedKey(base, before - 1)); it->Valid(); it->Next()) {
    std::string_view k = it->key();
    if (k.size() != size || k.substr(0, base.size()) != base) break;
    if (!fn(k, it->value())) break;
  }
  return it->status();
}

Status RunDb::DropUnfinishedCheckpoint() {
  std::string raw;
  Status s = Get(kUnfinishedCheckpointKey, &raw);
  if (s.IsNotFound()) return Status::Ok();
  if (!s.ok()) return s;
  if (raw.size() != 4) return Status::Corruption("the run database's mark of an unfinished checkpoint is malformed");
  uint32_t version = 0;
  for (char c : raw) version = version << 8 | static_cast<uint8_t>(c);
  Batch drop;
  // Object and chunk keys: a prefix, the base's numbers, then the version (store/keys.h).
  for (const auto& keys : {std::pair{kObjectPrefix, size_t{5}}, std::pair{kListChunkPrefix, size_t{9}}}) {
    const size_t base_size = keys.second;  // not a structured binding: clang 14 cannot capture one
    s = Scan(keys.first, [&](std::string_view key, std::string_view) {
      if (key.size() == base_size + kVersionBytes && VersionOfKey(key, base_size) == version) drop.Delete(key);
      return true;
    });
    if (!s.ok()) return s;
  }
  drop.Delete(kUnfinishedCheckpointKey);
  return Write(drop, true);
}

Status RunDb::ScanAll(const std::function<void(std::string_view key, std::string_view value)>& fn) {
  return Scan("", [&](std::string_view k, std::string_view v) {
    fn(k, v);
    return true;
  });
}

}  // namespace flow::store
