// RunDb on LevelDB, opened with paranoid checks and read with checksums verified: a damaged
// database is reported, never repaired silently and never read as an older state.
#include <leveldb/db.h>
#include <leveldb/write_batch.h>

#include "store/store.h"

namespace flow::store {

Batch::Batch() : batch_(new leveldb::WriteBatch) {}
Batch::~Batch() = default;

void Batch::Put(std::string_view key, std::string_view value) {
  batch_->Put(leveldb::Slice(key.data(), key.size()), leveldb::Slice(value.data(), value.size()));
  bytes_ += key.size() + value.size();
}

void Batch::Clear() {
  batch_->Clear();
  bytes_ = 0;
}

void Batch::Delete(std::string_view key) {
  batch_->Delete(leveldb::Slice(key.data(), key.size()));
  bytes_ += key.size();
}

Status RunDb::Convert(const void* raw) const {
  const auto& s = *static_cast<const leveldb::Status*>(raw);
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption("the run database " + dir_ + " is damaged: " + s.ToString());
  return Status::IOError("the run database " + dir_ + ": " + s.ToString());
}

Result<std::unique_ptr<RunDb>> RunDb::Open(const std::string& dir, const Options& options) {
  leveldb::Options o;
  o.create_if_missing = options.create;
  o.error_if_exists = options.create;
  o.paranoid_checks = true;
  if (options.env) o.env = options.env;
  leveldb::DB* db = nullptr;
  leveldb::Status s = leveldb::DB::Open(o, dir, &db);
  if (!s.ok()) {
    if (s.IsCorruption()) return Status::Corruption("the run database " + dir + " is damaged: " + s.ToString());
    if (s.IsInvalidArgument() && !options.create)
      return Status::Corruption("the run database " + dir + " is missing: " + s.ToString());
    return Status::IOError("cannot open the run database " + dir + ": " + s.ToString());
  }
  return std::unique_ptr<RunDb>(new RunDb(db, dir));
}

RunDb::~RunDb() { delete db_; }

Status RunDb::Write(const Batch& batch, bool sync) {
  leveldb::WriteOptions wo;
  wo.sync = sync;
  leveldb::Status s = db_->Write(wo, batch.batch_.get());
  return Convert(&s);
}

Status RunDb::Get(std::string_view key, std::string* value) {
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  leveldb::Status s = db_->Get(ro, leveldb::Slice(key.data(), key.size()), value);
  return Convert(&s);
}

Status RunDb::Scan(std::string_view prefix,
                   const std::function<bool(std::string_view key, std::string_view value)>& fn) {
  leveldb::ReadOptions ro;
  ro.verify_checksums = true;
  std::unique_ptr<leveldb::Iterator> it(db_->NewIterator(ro));
  for (it->Seek(leveldb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (k.substr(0, prefix.size()) != prefix) break;
    if (!fn(k, std::string_view(it->value().data(), it->value().size()))) break;
  }
  leveldb::Status s = it->status();
  return Convert(&s);
}

Status RunDb::ScanAll(const std::function<void(std::string_view key, std::string_view value)>& fn) {
  return Scan("", [&](std::string_view k, std::string_view v) {
    fn(k, v);
    return true;
  });
}

}  // namespace flow::store
