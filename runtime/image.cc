// Portable run images (`flow export` / `flow import`): one file holding everything a run
// needs to resume elsewhere: a checked header, then the run record, its bytecode, every
// entry of its database and its mark. The format is docs/checkpoint.md ("Portable images").
#include <fmt/format.h>
#include <unistd.h>

#include <optional>

#include "runtime/image.h"
#include "runtime/runtime.h"
#include "store/keys.h"
#include "vm/base/coding.h"
#include "vm/base/record.h"

namespace flow::runtime {

namespace {

constexpr std::string_view kImageMagic("\x7f" "FLOWVM\n", 8);
// 2: the source the code was compiled from follows the code (issue 11). Version 1 is still read.
constexpr uint32_t kImageVersion = 2;
constexpr uint32_t kImageVersion1 = 1;

}  // namespace

namespace {

// `run`: opened to read, its lock held or (live) a snapshot of it.
Status PackageRun(store::Store& st, const std::string& id, LoadedRun& run, std::string* image);

}  // namespace

Status ExportRun(store::Store& st, const std::string& id, std::string* image) {
  // Read-only, and checked as for resume: a rolled-back run is not packaged. A live run
  // is packaged as of a snapshot its process sends.
  LoadedRun run;
  if (Status s = OpenRunForReading(st, id, &run); !s.ok()) return s;
  return PackageRun(st, id, run, image);
}

Status ExportHeldRun(store::Store& st, const std::string& id, std::string* image) {
  LoadedRun run;
  if (Status s = OpenRunToRead(st, id, &run); !s.ok()) return s;
  return PackageRun(st, id, run, image);
}

namespace {

Status PackageRun(store::Store& st, const std::string& id, LoadedRun& run, std::string* image) {
  Result<store::RunRecord> record = st.ReadRun(id);
  if (!record.ok()) return record.status();
  std::string code;
  if (Status s = st.GetCode(record->code_hash, &code); !s.ok()) return s;
  std::string entries;
  uint64_t count = 0;
  if (Status s = run.db->ScanAll([&](std::string_view k, std::string_view v) {
        PutBytes(&entries, k);
        PutBytes(&entries, v);
        ++count;
      });
      !s.ok())
    return s;
  Result<uint64_t> mark = st.ReadMark(id);  // an async run may have none: 0
  // A store without marks acknowledged every checkpoint it holds.
  if (mark.status().code() == Status::Code::kNotSupported) mark = run.checkpoint;
  if (!mark.ok() && !mark.status().IsNotFound()) return mark.status();
  // A live run's process writes on: its mark may be past the snapshot, whose own
  // checkpoint is what the image holds (and all it acknowledges).
  if (run.live && mark.ok() && mark.value() > run.checkpoint) mark = run.checkpoint;
  std::string record_bytes;  // the record as the store sealed it
  if (Status s = st.ReadRunRecordBytes(id, &record_bytes); !s.ok()) return s;
  std::string payload;
  PutBytes(&payload, record_bytes);
  PutBytes(&payload, code);
  PutFixed8(&payload, run.source ? 1 : 0);
  PutBytes(&payload, run.source ? *run.source : "");
  PutVarint(&payload, count);
  payload += entries;
  PutVarint(&payload, mark.ok() ? mark.value() : 0);
  image->assign(kImageMagic);
  PutFixed32(image, kImageVersion);
  PutFixed64(image, payload.size());
  PutFixed64(image, Checksum(payload));
  *image += payload;
  return Status::Ok();
}

// Writes the checked run into the store: its folder, database, mark, code and, last, its
// record (a folder without a record is a start that died, taken over by the next one).
Status WriteImportedRun(store::Store& st, const store::RunRecord& record, std::string_view record_bytes,
                        std::string_view code, const std::optional<std::string_view>& source,
                        const std::vector<std::pair<std::string_view, std::string_view>>& entries, uint64_t mark) {
  const std::string& id = record.id;
  Result<std::unique_ptr<store::RunLock>> lock = st.LockRun(id);
  if (!lock.ok()) return lock.status();
  {
    Result<std::unique_ptr<store::RunDb>> db = st.OpenRunDb(id, true);
    if (!db.ok()) return db.status();
    store::Batch batch;
    for (const auto& [k, v] : entries) batch.Put(k, v);
    if (Status s = (*db)->Write(batch, true); !s.ok()) return s;
  }
  Result<std::unique_ptr<store::CheckpointMark>> m = st.OpenMark(id);
  if (!m.ok()) return m.status();
  if (mark != 0) {
    if (Status s = (*m)->Write(mark); !s.ok()) return s;
  }
  if (Status s = (*m)->Sync(); !s.ok()) return s;
  // Shared until the record names the code: gc removes no code a run is being created on.
  Result<std::unique_ptr<store::CodeLock>> code_lock = st.LockCode(false);
  if (!code_lock.ok()) return code_lock.status();
  Result<std::string> hash = st.PutCode(code);
  if (!hash.ok()) return hash.status();
  if (source) {
    if (Status s = st.PutSource(*hash, *source); !s.ok()) return s;
  }
  return st.WriteRunRecordBytes(record, record_bytes);
}

}  // namespace

Result<std::string> ImportRun(store::Store& st, std::string_view image) {
  if (image.size() < 28 || image.substr(0, 8) != kImageMagic)
    return Status::Corruption("not a Flow run image (bad magic or shorter than its header)");
  Reader header(image.substr(8, 20));
  uint32_t version = header.U32();
  uint64_t size = header.U64();
  uint64_t checksum = header.U64();
  if (version != kImageVersion && version != kImageVersion1)
    return Status::NotSupported(fmt::format("run image format version {} is not supported (this flow reads {})", version,
                                            kImageVersion));
  std::string_view payload = image.substr(28);
  if (payload.size() != size) return Status::Corruption("run image is truncated or has trailing bytes");
  if (Checksum(payload) != checksum) return Status::Corruption("run image checksum mismatch");
  Reader r(payload);
  std::string_view record_bytes = r.Bytes();
  std::string_view code = r.Bytes();
  std::optional<std::string_view> source;
  if (version >= 2) {
    bool has_source = r.U8() != 0;
    std::string_view text = r.Bytes();
    if (has_source) source = text;
  }
  uint64_t count = r.Varint();
  if (r.failed() || count > r.remaining()) return Status::Corruption("run image is malformed");
  std::vector<std::pair<std::string_view, std::string_view>> entries;
  for (uint64_t i = 0; i < count && !r.failed(); ++i) {
    std::string_view k = r.Bytes();
    entries.emplace_back(k, r.Bytes());
  }
  uint64_t mark = r.Varint();
  if (r.failed() || !r.at_end()) return Status::Corruption("run image is malformed");

  // Everything is checked before anything is written: a refused image leaves no trace.
  Result<store::RunRecord> record = store::DecodeRunRecord(record_bytes, "the run record in the image");
  if (!record.ok()) return record.status();
  if (store::CodeHash(code) != record->code_hash)
    return Status::Corruption("the run image's code does not match its record");
  if (Status s = CheckImportedState(*record, code, entries, mark); !s.ok()) return s;

  const std::string& id = record->id;
  if (Status s = st.CreateRunDir(id); !s.ok()) return s;
  if (Status s = WriteImportedRun(st, *record, record_bytes, code, source, entries, mark); !s.ok()) {
    st.RemoveRunDir(id);
    return s;
  }
  return id;
}

namespace {

constexpr char kMovingPrefix[] = "being moved by flow migrate to ";

// One run, its lock held in `from` throughout.
Status MigrateRun(store::Store& from, store::Store& to, const std::string& id) {
  Result<std::unique_ptr<store::RunLock>> lock = from.LockRun(id);
  if (!lock.ok()) return lock.status();
  std::string image;
  if (Status s = ExportHeldRun(from, id, &image); !s.ok()) return s;
  const std::string moving_there = kMovingPrefix + store::PrintableLocation(to.dir());
  std::string set_aside;
  const bool poisoned = from.IsPoisoned(id, &set_aside);
  const bool moving = poisoned && set_aside == moving_there;  // a migrate to the same store, cut short
  if (poisoned && !moving)
    return Status::InvalidArgument(fmt::format(
        "run {} is set aside ({}): resume or delete it there first", id, set_aside.substr(0, set_aside.find('\n'))));
  if (!moving) {
    if (Status s = from.SetPoisoned(id, moving_there); !s.ok()) return s;
  }
  // Signals sent and not yet received, which the image does not hold: there before the run.
  std::string mailbox;
  if (Status s = from.ReadShared(store::MailboxName(id), &mailbox); !s.ok()) return s;
  if (!mailbox.empty()) {
    if (Status s = to.UpdateShared(store::MailboxName(id), [&](std::string* bytes) { *bytes = mailbox; }); !s.ok())
      return s;
  }
  Result<std::string> imported = ImportRun(to, image);
  if (!imported.ok()) {
    // Already there: a migrate cut short after its copy (the same record), else refused.
    std::string there, here;
    const bool same = moving && to.ReadRunRecordBytes(id, &there).ok() && from.ReadRunRecordBytes(id, &here).ok() &&
                      there == here;
    if (!same) {
      if (!moving) from.ClearPoisoned(id);
      return imported.status();
    }
  }
  // What the image does not hold: a cancel asked; and a hint, so that the workers of the
  // store it went to take it when due.
  if (from.CancelRequested(id)) {
    if (Status s = to.RequestCancel(id); !s.ok()) return s;
  }
  if (Result<store::RunRecord> r = from.ReadRun(id); r.ok() && r->status == store::RunStatus::kSuspended &&
                                                      (r->wake_ms != 0 || !mailbox.empty())) {
    if (Status s = to.NoteWake(id, r->wake_ms); !s.ok()) return s;
  }
  uint64_t freed = 0;
  return from.DeleteRun(id, &freed);
}

}  // namespace

Status MigrateRuns(const std::string& from_location, const std::string& to_location, const std::vector<std::string>& ids,
                   std::vector<MigratedRun>* out) {
  Result<store::Store> from = store::Store::Open(from_location, false);
  if (!from.ok()) return InContext(from.status(), "store " + store::PrintableLocation(from_location));
  Result<store::Store> to = store::Store::Open(to_location, true);
  if (!to.ok()) return InContext(to.status(), "store " + store::PrintableLocation(to_location));
  std::vector<std::string> which = ids;
  if (which.empty()) {
    for (const store::RunRecord& r : from->ListRuns([](const std::string&, const Status&) {})) which.push_back(r.id);
  }
  for (const std::string& id : which) {
    MigratedRun m;
    m.id = id;
    int64_t pid = 0;
    if (from->IsRunLive(id, &pid)) {
      m.outcome = MigratedRun::Outcome::kLive;
      m.why = Status::InvalidArgument(fmt::format("run {} is being executed (pid {}): moved once it stops", id, pid));
    } else if (Status s = MigrateRun(*from, *to, id); !s.ok()) {
      m.outcome = MigratedRun::Outcome::kFailed;
      m.why = s;
    }
    out->push_back(std::move(m));
  }
  return Status::Ok();
}

namespace {

// Copies the code `hash` names (and its source, if stored) from one store to another.
Status CopyCode(const store::Store& from, store::Store& to, const std::string& hash) {
  std::string bytes, source;
  if (Status s = from.GetCode(hash, &bytes); !s.ok()) return s;
  Result<std::string> put = to.PutCode(bytes);
  if (!put.ok()) return put.status();
  Status got = from.GetSource(hash, &source);
  if (got.IsNotFound()) return Status::Ok();
  if (!got.ok()) return got;
  return to.PutSource(hash, source);
}

// What makes a schedule that schedule, not how far it has fired: a move cut short after
// its write leaves it in both stores, and each may fire it before the next migrate.
std::string IdentityOf(store::ScheduleRecord s) {
  s.paused = false;
  s.next_ms = s.last_tick_ms = 0;
  s.last_run_id.clear();
  s.fired = s.skipped = 0;
  return store::EncodeSchedule(s);
}

// Moves schedule `s`: written in `to` (its code first), then deleted from `from`. One cut
// short between the two leaves it in both, and the next migrate finishes it (deleting it
// from `from`: the copy in `to` stands).
Status MoveSchedule(store::Store& from, store::Store& to, const store::ScheduleRecord& s) {
  Result<store::ScheduleRecord> there = to.ReadSchedule(s.name);
  if (there.ok() && IdentityOf(*there) != IdentityOf(s))
    return Status::InvalidArgument(fmt::format("another schedule named {} exists in {}", s.name, store::PrintableLocation(to.dir())));
  if (!there.ok() && !there.status().IsNotFound()) return there.status();
  if (!there.ok()) {
    if (Status c = CopyCode(from, to, s.code_hash); !c.ok()) return c;
    if (Status w = to.WriteSchedule(s); !w.ok()) return w;
  }
  return from.DeleteSchedule(s.name);
}

}  // namespace

Status MigrateSchedulesAndCaps(const std::string& from_location, const std::string& to_location, MigratedConfig* out) {
  Result<store::Store> from = store::Store::Open(from_location, false);
  if (!from.ok()) return InContext(from.status(), "store " + store::PrintableLocation(from_location));
  Result<store::Store> to = store::Store::Open(to_location, true);
  if (!to.ok()) return InContext(to.status(), "store " + store::PrintableLocation(to_location));
  std::vector<std::string> capped;
  if (Status s = from->ListCappedQueues(&capped); !s.ok()) return s;
  for (const std::string& queue : capped) {
    Result<uint32_t> cap = from->ReadQueueCap(queue);
    Status s = cap.ok() ? to->WriteQueueCap(queue, *cap) : cap.status();
    if (s.ok()) out->caps.emplace_back(queue, *cap);
    else out->failed.emplace_back("queue " + queue, s);
  }
  // In the order a schedule's add takes them (code, then schedules): B's code lock until
  // the schedules name their code; both schedule locks, so that no tick fires in either
  // store while a schedule is in both.
  Result<std::unique_ptr<store::CodeLock>> code_lock = to->LockCode(false);
  if (!code_lock.ok()) return code_lock.status();
  Result<std::unique_ptr<store::ScheduleLock>> from_lock = from->LockSchedules();
  if (!from_lock.ok()) return from_lock.status();
  Result<std::unique_ptr<store::ScheduleLock>> to_lock = to->LockSchedules();
  if (!to_lock.ok()) return to_lock.status();
  for (const store::ScheduleRecord& s : from->ListSchedules([&](const std::string& name, const Status& why) {
         out->failed.emplace_back("schedule " + name, why);
       })) {
    if (Status m = MoveSchedule(*from, *to, s); !m.ok()) out->failed.emplace_back("schedule " + s.name, m);
    else out->schedules.push_back(s.name);
  }
  return Status::Ok();
}

}  // namespace flow::runtime
