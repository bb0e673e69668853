#include "store/pg/pg_store.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <system_error>

#include "store/keys.h"
#include "store/pg/pg_run_db.h"
#include "store/pg/schema.h"

namespace flow::store::pg {

namespace {

int64_t LeaseMsFromEnvironment() {
  const char* v = std::getenv("FLOW_LEASE_MS");
  if (!v || !*v) return kDefaultLeaseMs;
  char* end = nullptr;
  long long ms = std::strtoll(v, &end, 10);
  return (*end == '\0' && ms >= 100) ? ms : kDefaultLeaseMs;
}

// This kernel and pid namespace: processes that share it see each other's pids.
// FLOW_MACHINE_ID names it instead (processes given different ones wait out each other's
// leases as if on different machines: tests/postgres/workers_test.py).
std::string ThisMachine() {
  if (const char* id = std::getenv("FLOW_MACHINE_ID"); id && *id) {
    std::string named;
    for (const char* p = id; *p; ++p)
      if (*p != ':') named += *p;  // the owner's separator
    return named;
  }
  std::string boot_id;
  (void)ReadFile("/proc/sys/kernel/random/boot_id", &boot_id, 64);
  boot_id = boot_id.substr(0, 8);
  char ns[64] = {};
  ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  std::string pid_ns = n > 0 ? std::string(ns, static_cast<size_t>(n)) : "";
  std::string digits;
  for (char c : pid_ns)
    if (c >= '0' && c <= '9') digits += c;
  return boot_id + "." + digits;
}

// What /proc/PID/stat says of a process: its state (Z: a zombie) and its start time
// (field 22, clock ticks since boot). False if it cannot be read.
bool ReadProcStat(int64_t pid, char* state, std::string* start_time) {
  std::string stat;
  if (!ReadFile(fmt::format("/proc/{}/stat", pid), &stat, 4096).ok()) return false;
  size_t paren = stat.rfind(')');  // the state follows the command name, which may hold anything
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  std::string_view rest = std::string_view(stat).substr(paren + 2);  // field 3 on
  *state = rest[0];
  for (int field = 3; field < 22; ++field) {
    size_t space = rest.find(' ');
    if (space == std::string_view::npos) return false;
    rest.remove_prefix(space + 1);
  }
  *start_time = std::string(rest.substr(0, rest.find(' ')));
  return true;
}

// host:pid:machine:start.random (docs/checkpoint.md, "Leases"): the start time tells this
// process from a later one given the same pid.
std::string NewOwner() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::random_device rd;
  char state = 0;
  std::string start;
  (void)ReadProcStat(getpid(), &state, &start);
  return fmt::format("{}:{}:{}:{}.{:08x}", host, getpid(), ThisMachine(), start, rd());
}

// The pid that `owner` names, if it is a process of this machine (else 0).
int64_t PidHere(std::string_view owner) {
  size_t a = owner.find(':');
  size_t b = a == std::string_view::npos ? a : owner.find(':', a + 1);
  size_t c = b == std::string_view::npos ? b : owner.find(':', b + 1);
  if (c == std::string_view::npos || owner.substr(b + 1, c - b - 1) != ThisMachine()) return 0;
  int64_t pid = 0;
  for (char ch : owner.substr(a + 1, b - a - 1)) {
    if (ch < '0' || ch > '9' || pid > (1 << 30)) return 0;
    pid = pid * 10 + (ch - '0');
  }
  return pid;
}

// Set in a worker's child (Store::TakeClaimsOfParent): only it takes its parent's claims.
bool take_claims_of_parent = false;

// A worker's claim (ClaimRun) is held as its owner + this: a lease it took to execute a
// run itself is never handed over.
constexpr char kClaimSuffix[] = "+claim";

bool ClaimOfParent(std::string_view owner) {
  const int64_t pid = PidHere(owner);
  return owner.ends_with(kClaimSuffix) && pid > 0 && pid == getppid();
}

class PgRunLock final : public RunLock {
 public:
  PgRunLock(std::shared_ptr<PgStore> st, std::string id) : st_(std::move(st)), id_(std::move(id)) {}
  ~PgRunLock() override { st_->ReleaseLease(id_); }

 private:
  std::shared_ptr<PgStore> st_;
  std::string id_;
};

class PgCodeLock final : public CodeLock {
 public:
  PgCodeLock(std::shared_ptr<PgStore> st, bool exclusive) : st_(std::move(st)), exclusive_(exclusive) {}
  ~PgCodeLock() override {
    static constexpr char kUnlockShared[] = "SELECT pg_advisory_unlock_shared($1::bigint)";
    static constexpr char kUnlock[] = "SELECT pg_advisory_unlock($1::bigint)";
    (void)st_->connection().Exec(exclusive_ ? kUnlock : kUnlockShared, {Param::Int(kCodeLockKey)});
  }

 private:
  std::shared_ptr<PgStore> st_;
  bool exclusive_;
};

// Checkpoints are transactions: a database never falls behind what it acknowledged.
class NoMark final : public CheckpointMark {
 public:
  Status Write(uint64_t) override { return Status::Ok(); }
  Status Sync() override { return Status::Ok(); }
};

Result<RunRecord> DecodeRowRecord(const std::string& id, std::string_view bytes) {
  Result<RunRecord> r = DecodeRunRecord(bytes, fmt::format("the record of run {}", id));
  if (r.ok() && r->id != id) return Status::Corruption(fmt::format("the record of run {} is malformed", id));
  return r;
}

}  // namespace

// (pg_store.h) Dead: gone; or a zombie not yet reaped (a worker killed with its children
// leaves them so for a moment; a file store's lock is released by then); or its pid is
// another process's now, or a thread's (pids are reused, sooner where pid_max is 32768):
// the owner's start time is not that process's.
bool OwnerDiedHere(std::string_view owner) {
  const int64_t pid = PidHere(owner);
  if (pid <= 0) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  char state = 0;
  std::string start;
  if (!ReadProcStat(pid, &state, &start)) return false;
  if (state == 'Z') return true;
  std::string_view last = owner.substr(owner.rfind(':') + 1);  // start.random[+claim]
  const size_t dot = last.find('.');
  return dot != std::string_view::npos && dot > 0 && last.substr(0, dot) != start;
}

PgStore::PgStore(std::string address, std::unique_ptr<Connection> conn)
    : address_(std::move(address)), conn_(std::move(conn)), owner_(NewOwner()), lease_ms_(LeaseMsFromEnvironment()) {}

PgStore::~PgStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_renewer_.notify_all();
  if (renewer_.joinable()) renewer_.join();
}

}  // namespace flow::store::pg

void flow::store::Store::TakeClaimsOfParent() { flow::store::pg::take_claims_of_parent = true; }

namespace flow::store::pg {

Result<std::shared_ptr<PgStore>> PgStore::Open(const std::string& address, bool create) {
  Result<std::unique_ptr<Connection>> conn = Connection::Open(address);
  if (!conn.ok()) return conn.status();
  Result<int> version = SchemaVersion(**conn);
  if (!version.ok()) return version.status();
  if (*version > kSchemaVersion)
    return Status::InvalidArgument(fmt::format(
        "the store at {} was written by a newer flow (schema version {}; this flow knows up to {}): upgrade flow",
        RedactedAddress(address), *version, kSchemaVersion));
  if (*version < kSchemaVersion) {
    if (!create && *version == 0)
      return Status::NotFound(fmt::format("no store at {} (create it with `flow store init --store {}`)",
                                          RedactedAddress(address), RedactedAddress(address)));
    if (Status s = CreateOrMigrateSchema(**conn); !s.ok()) return s;
  }
  return std::shared_ptr<PgStore>(new PgStore(address, std::move(conn.value())));
}

Result<std::unique_ptr<RunDb>> PgStore::OpenRunDb(const std::string& id, bool create) {
  std::unique_ptr<RunDb> db = NewPgRunDb(conn_.get(), id, owner_);
  if (!create) {
    if (Status s = db->DropUnfinishedCheckpoint(); !s.ok()) return s;
  }
  return db;
}

// On a connection of its own, in a REPEATABLE READ transaction: a reader of a live run
// reads one checkpoint whole while the run writes the next (and, keeping only its last,
// overwrites this one's objects).
Result<std::unique_ptr<RunDb>> PgStore::OpenRunDbToRead(const std::string& id) const {
  Result<std::unique_ptr<Connection>> snapshot = Connection::Open(address_);
  if (!snapshot.ok()) return snapshot.status();
  if (Status s = (*snapshot)->ExecScript("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !s.ok()) return s;
  return NewPgRunDb(nullptr, id, "", std::move(snapshot.value()));
}

// --- code ---

Result<std::string> PgStore::PutCode(std::string_view bytes) {
  std::string hash = CodeHash(bytes);
  static constexpr char kPut[] =
      "INSERT INTO flow_code (hash, bytecode) VALUES ($1::text, $2::bytea) ON CONFLICT (hash) DO NOTHING";
  Result<Rows> r = conn_->Exec(kPut, {Param::Text(hash), Param::Bytes(bytes)});
  if (!r.ok()) return r.status();
  return hash;
}

Status PgStore::GetCode(const std::string& hash, std::string* bytes) const {
  static constexpr char kGet[] = "SELECT bytecode FROM flow_code WHERE hash = $1::text";
  Result<Rows> r = conn_->Exec(kGet, {Param::Text(hash)});
  if (!r.ok()) return r.status();
  if (r->size() == 0) return Status::NotFound(fmt::format("the code {} is not in the store", hash));
  bytes->assign(r->Bytes(0, 0));
  return Status::Ok();
}

Status PgStore::PutSource(const std::string& hash, std::string_view text) {
  static constexpr char kPut[] = "UPDATE flow_code SET source = $2::bytea WHERE hash = $1::text AND source IS NULL";
  Result<Rows> r = conn_->Exec(kPut, {Param::Text(hash), Param::Bytes(text)});
  return r.status();
}

Status PgStore::GetSource(const std::string& hash, std::string* text) const {
  static constexpr char kGet[] = "SELECT source FROM flow_code WHERE hash = $1::text AND source IS NOT NULL";
  Result<Rows> r = conn_->Exec(kGet, {Param::Text(hash)});
  if (!r.ok()) return r.status();
  if (r->size() == 0) return Status::NotFound(fmt::format("no source is stored for the code {}", hash));
  text->assign(r->Bytes(0, 0));
  return Status::Ok();
}

Result<std::unique_ptr<CodeLock>> PgStore::LockCode(bool exclusive) {
  static constexpr char kLockShared[] = "SELECT pg_advisory_lock_shared($1::bigint)";
  static constexpr char kLock[] = "SELECT pg_advisory_lock($1::bigint)";
  Result<Rows> r = conn_->Exec(exclusive ? kLock : kLockShared, {Param::Int(kCodeLockKey)});
  if (!r.ok()) return r.status();
  return std::unique_ptr<CodeLock>(new PgCodeLock(shared_from_this(), exclusive));
}

// --- retention ---

uint64_t PgStore::RunDiskBytes(const std::string& id) const {
  static constexpr char kBytes[] = R"sql(
SELECT (coalesce((SELECT sum(octet_length(key) + octet_length(value)) FROM flow_run_keys WHERE run = $1::text), 0)
      + coalesce((SELECT octet_length(record) FROM flow_runs WHERE id = $1::text), 0))::bigint)sql";
  Result<Rows> r = conn_->Exec(kBytes, {Param::Text(id)});
  return r.ok() ? static_cast<uint64_t>(r->Int(0, 0)) : 0;
}

Status PgStore::DeleteRun(const std::string& id, uint64_t* freed) {
  *freed = 0;
  if (!IsValidRunId(id)) return Status::InvalidArgument(fmt::format("`{}` is not a run id", id));
  static constexpr char kExists[] = "SELECT 1 FROM flow_runs WHERE id = $1::text";
  Result<Rows> exists = conn_->Exec(kExists, {Param::Text(id)});
  if (!exists.ok()) return exists.status();
  if (exists->size() == 0) return Status::NotFound(fmt::format("no run {} in the store {}", id, RedactedAddress(address_)));
  // Its lease, held while its rows go: no process executes it meanwhile.
  Result<std::unique_ptr<RunLock>> lock = LockRun(id);
  if (!lock.ok())
    return Status::InvalidArgument(lock.status().message() + "; a live run is not deleted (flow cancel it, or wait for it to stop)");
  *freed = RunDiskBytes(id);
  return conn_->InTransaction([&]() -> Status {
    static constexpr char kKeys[] = "DELETE FROM flow_run_keys WHERE run = $1::text";
    static constexpr char kRun[] = "DELETE FROM flow_runs WHERE id = $1::text";
    static constexpr char kMailbox[] = "DELETE FROM flow_shared WHERE name = $1::text";
    if (Result<Rows> r = conn_->Exec(kKeys, {Param::Text(id)}); !r.ok()) return r.status();
    if (Result<Rows> r = conn_->Exec(kRun, {Param::Text(id)}); !r.ok()) return r.status();
    return conn_->Exec(kMailbox, {Param::Text(MailboxName(id))}).status();
  });
}

Status PgStore::CollectCode(bool dry_run, const std::vector<std::string>& going, std::vector<std::string>* removed,
                            uint64_t* freed) {
  Result<std::unique_ptr<CodeLock>> lock = LockCode(true);
  if (!lock.ok()) return lock.status();
  std::vector<std::string_view> going_ids(going.begin(), going.end());
  static constexpr char kUnused[] = R"sql(
SELECT hash, (octet_length(bytecode) + coalesce(octet_length(source), 0))::bigint FROM flow_code
WHERE hash NOT IN (SELECT code_hash FROM flow_runs WHERE code_hash IS NOT NULL AND NOT (id = ANY($1::text[])))
  AND hash NOT IN (SELECT code_hash FROM flow_schedules)
ORDER BY hash)sql";
  Result<Rows> r = conn_->Exec(kUnused, {Param::TextArray(going_ids)});
  if (!r.ok()) return r.status();
  for (int i = 0; i < r->size(); ++i) {
    std::string hash(r->Bytes(i, 0));
    if (!dry_run) {
      static constexpr char kDelete[] = "DELETE FROM flow_code WHERE hash = $1::text";
      if (Result<Rows> d = conn_->Exec(kDelete, {Param::Text(hash)}); !d.ok()) return d.status();
    }
    removed->push_back(std::move(hash));
    *freed += static_cast<uint64_t>(r->Int(i, 1));
  }
  return Status::Ok();
}

// --- runs ---

Status PgStore::CreateRunDir(const std::string& id, bool) {
  static constexpr char kCreate[] = "INSERT INTO flow_runs (id) VALUES ($1::text) ON CONFLICT (id) DO NOTHING";
  Result<Rows> r = conn_->Exec(kCreate, {Param::Text(id)});
  if (!r.ok()) return r.status();
  if (r->Changed() == 0) return Status::InvalidArgument(fmt::format("run {} already exists", id));
  return Status::Ok();
}

Status PgStore::RemoveRunDir(const std::string& id) {
  uint64_t ignored = 0;
  return DeleteRun(id, &ignored);
}

Status PgStore::ClearRunDir(const std::string& id) {
  static constexpr char kClear[] = "DELETE FROM flow_run_keys WHERE run = $1::text";
  return conn_->Exec(kClear, {Param::Text(id)}).status();
}

Status PgStore::WriteRun(const RunRecord& record) { return WriteRunRecordBytes(record, EncodeRunRecord(record)); }

// The record's bytes, with the columns a query needs beside them (its status, its code).
// A run this process holds the lease of is written only while it still does, as its
// checkpoints are (a worker that lost it must not write over the new holder's record).
Status PgStore::WriteRunRecordBytes(const RunRecord& record, std::string_view bytes) {
  if (Status s = conn_->SetSynchronousCommit(true); !s.ok()) return s;
  bool held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held = leases_.count(record.id) > 0;
  }
  if (held) {
    static constexpr char kWriteHeld[] = R"sql(
UPDATE flow_runs SET record = $2::bytea, status = $3::bigint, code_hash = $4::text
WHERE id = $1::text AND lease_owner = $5::text)sql";
    Result<Rows> r = conn_->Exec(kWriteHeld, {Param::Text(record.id), Param::Bytes(bytes),
                                              Param::Int(static_cast<int64_t>(record.status)),
                                              Param::Text(record.code_hash), Param::Text(owner_)});
    if (!r.ok()) return r.status();
    if (r->Changed() != 1)
      return Status::IOError(fmt::format(
          "run {} is no longer this process's to write: its lease expired and another worker took it over", record.id));
    return Status::Ok();
  }
  static constexpr char kWrite[] = R"sql(
INSERT INTO flow_runs (id, record, status, code_hash) VALUES ($1::text, $2::bytea, $3::bigint, $4::text)
ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, status = EXCLUDED.status, code_hash = EXCLUDED.code_hash)sql";
  return conn_->Exec(kWrite, {Param::Text(record.id), Param::Bytes(bytes), Param::Int(static_cast<int64_t>(record.status)),
                              Param::Text(record.code_hash)})
      .status();
}

Status PgStore::WriteOrigin(const std::string& id, std::string_view bytes) {
  if (Status s = conn_->SetSynchronousCommit(true); !s.ok()) return s;
  static constexpr char kWrite[] = "UPDATE flow_runs SET origin = $2::bytea WHERE id = $1::text";
  Result<Rows> r = conn_->Exec(kWrite, {Param::Text(id), Param::Bytes(bytes)});
  if (!r.ok()) return r.status();
  return r->Changed() ? Status::Ok() : Status::NotFound(fmt::format("no run {}", id));
}

Status PgStore::ReadOrigin(const std::string& id, std::string* bytes) const {
  static constexpr char kRead[] = "SELECT origin FROM flow_runs WHERE id = $1::text AND origin IS NOT NULL";
  Result<Rows> r = conn_->Exec(kRead, {Param::Text(id)});
  if (!r.ok()) return r.status();
  if (r->size() == 0) return Status::NotFound(fmt::format("run {} has no origin", id));
  bytes->assign(r->Bytes(0, 0));
  return Status::Ok();
}

Status PgStore::ReadRunRecordBytes(const std::string& id, std::string* bytes, bool* from_packed) const {
  if (from_packed) *from_packed = false;
  static constexpr char kRead[] = "SELECT record FROM flow_runs WHERE id = $1::text AND record IS NOT NULL";
  Result<Rows> r = conn_->Exec(kRead, {Param::Text(id)});
  if (!r.ok()) return r.status();
  if (r->size() == 0) return Status::NotFound(fmt::format("no run {}", id));
  bytes->assign(r->Bytes(0, 0));
  return Status::Ok();
}

Result<RunRecord> PgStore::ReadRun(const std::string& id) const {
  std::string bytes;
  if (Status s = ReadRunRecordBytes(id, &bytes); !s.ok()) return s;
  return DecodeRowRecord(id, bytes);
}

namespace {

// Each run of `rows` (id, record) to `each`; one that cannot be read to `unreadable`.
void EachRecord(Result<Rows> r, const std::function<void(ListedRun& run)>& each,
                const std::function<void(const std::string& id, const Status&)>& unreadable) {
  if (!r.ok()) {
    unreadable("*", r.status());
    return;
  }
  for (int i = 0; i < r->size(); ++i) {
    std::string id(r->Bytes(i, 0));
    Result<RunRecord> record = DecodeRowRecord(id, r->Bytes(i, 1));
    if (!record.ok()) {
      unreadable(id, record.status());
      continue;
    }
    ListedRun run;
    run.record = std::move(record.value());
    each(run);
  }
}

}  // namespace

void PgStore::ForEachRun(const std::function<void(ListedRun& run)>& each,
                         const std::function<void(const std::string& id, const Status&)>& unreadable,
                         Status* index_status) const {
  if (index_status) *index_status = Status::Ok();
  static constexpr char kAll[] = "SELECT id, record FROM flow_runs WHERE record IS NOT NULL ORDER BY id";
  EachRecord(conn_->Exec(kAll), each, unreadable);
}

std::vector<ListedRun> PgStore::ListRunEntries(const std::function<void(const std::string& id, const Status&)>& unreadable,
                                               Status* index_status) const {
  std::vector<ListedRun> out;
  ForEachRun([&](ListedRun& run) { out.push_back(std::move(run)); }, unreadable, index_status);
  return out;
}

std::vector<RunRecord> PgStore::ListRuns(const std::function<void(const std::string& id, const Status&)>& unreadable) const {
  std::vector<RunRecord> out;
  ForEachRun([&](ListedRun& run) { out.push_back(std::move(run.record)); }, unreadable, nullptr);
  return out;
}

// The runs that have not ended (a worker's periodic look): ended ones are never due.
std::vector<RunRecord> PgStore::ListRunsInFiles(
    const std::function<void(const std::string& id, const Status&)>& unreadable) const {
  static constexpr char kUnended[] =
      "SELECT id, record FROM flow_runs WHERE record IS NOT NULL AND status NOT IN (2, 3, 5) ORDER BY id";
  std::vector<RunRecord> out;
  EachRecord(conn_->Exec(kUnended), [&](ListedRun& run) { out.push_back(std::move(run.record)); }, unreadable);
  return out;
}

Status PgStore::IndexPackedRuns(const std::vector<std::string>&) { return Status::Ok(); }  // nothing is packed

bool PgStore::RunExists(const std::string& id) const {
  std::string ignored;
  return ReadRunRecordBytes(id, &ignored).ok();
}

// --- leases ---

// Takes the run's lease for this process: free, expired or its own; or held by a process
// of this machine that died; or (`from_parent`) claimed by this process's parent, a worker
// handing the run over (ClaimRun). SKIP LOCKED: a worker that claims at the same moment
// passes over the row instead of waiting for it. InvalidArgument names the holder.
Result<bool> PgStore::TakeLease(const std::string& id, const std::string& owner, bool from_parent) {
  static constexpr char kTake[] = R"sql(
WITH free AS (SELECT id FROM flow_runs
              WHERE id = $1::text AND (lease_owner IS NULL OR lease_until < now() OR lease_owner = $2::text)
              FOR UPDATE SKIP LOCKED)
UPDATE flow_runs r SET lease_owner = $2::text, lease_pid = $3::bigint,
                       lease_until = now() + $4::bigint * interval '1 millisecond'
FROM free WHERE r.id = free.id)sql";
  // The same, waiting for the row: skipped, it may have been locked a moment by another
  // statement on it (a hint noted, a crash counted), not by a taker.
  static constexpr char kTakeWaiting[] = R"sql(
UPDATE flow_runs SET lease_owner = $2::text, lease_pid = $3::bigint,
                     lease_until = now() + $4::bigint * interval '1 millisecond'
WHERE id = $1::text AND (lease_owner IS NULL OR lease_until < now() OR lease_owner = $2::text))sql";
  if (Status s = conn_->SetSynchronousCommit(true); !s.ok()) return s;
  for (const char* take : {kTake, kTakeWaiting}) {
    Result<Rows> r = conn_->Exec(take, {Param::Text(id), Param::Text(owner), Param::Int(getpid()), Param::Int(lease_ms_)});
    if (!r.ok()) return r.status();
    if (r->Changed() == 1) return true;
  }
  static constexpr char kHolder[] = "SELECT lease_pid, lease_owner FROM flow_runs WHERE id = $1::text";
  Result<Rows> h = conn_->Exec(kHolder, {Param::Text(id)});
  if (!h.ok()) return h.status();
  if (h->size() == 0) return Status::NotFound(fmt::format("no run {}", id));
  if (h->IsNull(0, 1)) return false;  // freed meanwhile, or locked by a claim being made
  std::string holder(h->Bytes(0, 1));
  if (OwnerDiedHere(holder) || (from_parent && ClaimOfParent(holder))) {
    static constexpr char kTakeFrom[] = R"sql(
UPDATE flow_runs SET lease_owner = $2::text, lease_pid = $3::bigint,
                     lease_until = now() + $4::bigint * interval '1 millisecond'
WHERE id = $1::text AND lease_owner = $5::text)sql";
    Result<Rows> taken = conn_->Exec(kTakeFrom, {Param::Text(id), Param::Text(owner), Param::Int(getpid()),
                                                Param::Int(lease_ms_), Param::Text(holder)});
    if (!taken.ok()) return taken.status();
    if (taken->Changed() == 1) return true;
  }
  return Status::InvalidArgument(
      fmt::format("run {} is being executed by another process (pid {}, lease of {})", id, h->Int(0, 0), holder));
}

Result<std::unique_ptr<RunLock>> PgStore::LockRun(const std::string& id) {
  Result<bool> taken = TakeLease(id, owner_, take_claims_of_parent);
  if (!taken.ok()) return taken.status();
  if (!*taken) return Status::InvalidArgument(fmt::format("run {} is being executed by another process", id));
  Status renewing;
  {
    std::lock_guard<std::mutex> lock(mu_);
    leases_.insert(id);
    renewing = StartRenewer();
  }
  if (!renewing.ok()) {
    ReleaseLease(id);
    return renewing;
  }
  return std::unique_ptr<RunLock>(new PgRunLock(shared_from_this(), id));
}

// The claim is a lease like any, held by the worker until its child takes it over; not
// renewed: a worker that dies before its child takes the run loses the claim in a lease.
Result<bool> PgStore::ClaimRun(const std::string& id) {
  Result<bool> taken = TakeLease(id, owner_ + kClaimSuffix, false);
  if (taken.ok() || taken.status().code() != Status::Code::kInvalidArgument) return taken;
  return false;  // another holds it
}

void PgStore::ReleaseLease(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    leases_.erase(id);
  }
  static constexpr char kRelease[] = R"sql(
UPDATE flow_runs SET lease_owner = NULL, lease_pid = NULL, lease_until = NULL
WHERE id = $1::text AND lease_owner = $2::text)sql";
  (void)conn_->Exec(kRelease, {Param::Text(id), Param::Text(owner_)});
  StopRenewerIfIdle();
}

Status PgStore::StartRenewer() {
  if (renewer_.joinable()) return Status::Ok();
  try {
    renewer_ = std::thread([this, generation = renewer_generation_] { RenewLeases(generation); });
  } catch (const std::system_error& e) {  // out of threads (a pids limit): the take is undone
    return Status::IOError(fmt::format("cannot start the thread that renews leases: {}", e.what()));
  }
  return Status::Ok();
}

// The thread runs only while the process holds a lease or a slot: a worker forks its
// children with no other thread alive (a worker that fired a schedule took a run's lease
// a moment, to create its queued run).
void PgStore::StopRenewerIfIdle() {
  std::thread idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!leases_.empty() || !slots_.empty() || !renewer_.joinable()) return;
    ++renewer_generation_;  // it ends
    idle = std::move(renewer_);
  }
  wake_renewer_.notify_all();
  idle.join();
}

// On a connection of its own (libpq connections serve one thread at a time), until the
// store closes or StopRenewerIfIdle moves on to a generation after this thread's.
void PgStore::RenewLeases(uint64_t generation) {
  std::unique_ptr<Connection> conn;
  std::unique_lock<std::mutex> lock(mu_);
  auto ending = [&] { return stopping_ || renewer_generation_ != generation; };
  while (!ending()) {
    wake_renewer_.wait_for(lock, std::chrono::milliseconds(lease_ms_ / 3), ending);
    if (ending() || (leases_.empty() && slots_.empty())) continue;
    std::vector<std::string> held(leases_.begin(), leases_.end());
    std::vector<std::string> slots;
    for (const auto& [queue, index] : slots_) slots.push_back(SlotKey(queue, index));
    lock.unlock();
    if (!conn) {
      Result<std::unique_ptr<Connection>> c = Connection::Open(address_);
      if (c.ok()) conn = std::move(c.value());
    }
    if (conn) {
      std::vector<std::string_view> ids(held.begin(), held.end());
      static constexpr char kRenew[] = R"sql(
UPDATE flow_runs SET lease_until = now() + $2::bigint * interval '1 millisecond'
WHERE id = ANY($3::text[]) AND lease_owner = $1::text)sql";
      // A renewal that fails is tried again next time; the writes' fence keeps a lease
      // lost meanwhile from being written through.
      static constexpr char kRenewSlots[] = R"sql(
UPDATE flow_queue_slots SET until = now() + $2::bigint * interval '1 millisecond'
WHERE (queue, slot) IN (SELECT split_part(k, ':', 1), split_part(k, ':', 2)::bigint FROM unnest($3::text[]) k)
  AND owner = $1::text)sql";
      std::vector<std::string_view> slot_keys(slots.begin(), slots.end());
      if ((!ids.empty() && !conn->Exec(kRenew, {Param::Text(owner_), Param::Int(lease_ms_), Param::TextArray(ids)}).ok()) ||
          (!slot_keys.empty() &&
           !conn->Exec(kRenewSlots, {Param::Text(owner_), Param::Int(lease_ms_), Param::TextArray(slot_keys)}).ok()))
        conn.reset();
    }
    lock.lock();
  }
}

bool PgStore::IsRunLive(const std::string& id, int64_t* pid) const {
  static constexpr char kLive[] =
      "SELECT lease_pid, lease_owner FROM flow_runs WHERE id = $1::text AND lease_owner IS NOT NULL AND lease_until >= now()";
  Result<Rows> r = conn_->Exec(kLive, {Param::Text(id)});
  if (!r.ok() || r->size() == 0 || OwnerDiedHere(r->Bytes(0, 1))) return false;
  *pid = r->Int(0, 0);
  return true;
}

std::string PgStore::RunDir(const std::string&) const { return ""; }

Result<std::unique_ptr<CheckpointMark>> PgStore::OpenMark(const std::string&) {
  return std::unique_ptr<CheckpointMark>(new NoMark);
}

Result<uint64_t> PgStore::ReadMark(const std::string& id) const {
  return Status::NotSupported(fmt::format("run {} has no checkpoint mark: its checkpoints are transactions", id));
}

// --- packing: nothing to pack ---

bool PgStore::IsPacked(const std::string&) const { return false; }
Result<PackedRun> PgStore::ReadPacked(const std::string& id) const {
  return Status::NotSupported(fmt::format("run {} is in a PostgreSQL store, which packs no runs", id));
}
Status PgStore::PackRun(const std::string&, uint64_t) { return Status::Ok(); }
Status PgStore::UnpackRun(const std::string&) { return Status::Ok(); }

// --- shared state ---

Status PgStore::UpdateShared(const std::string& name, const std::function<void(std::string* bytes)>& update) {
  if (name.empty() || name.size() > 127) return Status::InvalidArgument("a shared name must be 1 to 127 bytes");
  if (Status s = conn_->SetSynchronousCommit(true); !s.ok()) return s;
  return conn_->InTransaction([&]() -> Status {
    static constexpr char kMake[] =
        "INSERT INTO flow_shared (name, bytes) VALUES ($1::text, ''::bytea) ON CONFLICT (name) DO NOTHING";
    static constexpr char kRead[] = "SELECT bytes FROM flow_shared WHERE name = $1::text FOR UPDATE";
    static constexpr char kWrite[] = "UPDATE flow_shared SET bytes = $2::bytea WHERE name = $1::text";
    if (Result<Rows> r = conn_->Exec(kMake, {Param::Text(name)}); !r.ok()) return r.status();
    Result<Rows> r = conn_->Exec(kRead, {Param::Text(name)});
    if (!r.ok()) return r.status();
    std::string bytes(r->Bytes(0, 0));
    update(&bytes);
    return conn_->Exec(kWrite, {Param::Text(name), Param::Bytes(bytes)}).status();
  });
}

Status PgStore::ReadShared(const std::string& name, std::string* bytes) {
  if (name.empty() || name.size() > 127) return Status::InvalidArgument("a shared name must be 1 to 127 bytes");
  static constexpr char kRead[] = "SELECT bytes FROM flow_shared WHERE name = $1::text";
  Result<Rows> r = conn_->Exec(kRead, {Param::Text(name)});
  if (!r.ok()) return r.status();
  bytes->assign(r->size() ? r->Bytes(0, 0) : std::string_view());
  return Status::Ok();
}

// --- wake hints: a column of the run's row, announced on channel flow_wake ---

// The notification's payload: "WAKE_MS ID", as a hint file's name is (store/wake_index.cc).
Status PgStore::NoteWake(const std::string& id, int64_t wake_ms) {
  static constexpr char kNote[] = R"sql(
WITH noted AS (UPDATE flow_runs SET wake_hint_ms = $2::bigint WHERE id = $1::text)
SELECT pg_notify('flow_wake', $2::bigint || ' ' || $1::text))sql";
  return conn_->Exec(kNote, {Param::Text(id), Param::Int(wake_ms)}).status();
}

namespace {

class PgWakeWatch final : public StoreImpl::WakeWatch {
 public:
  explicit PgWakeWatch(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}
  int fd() const override { return conn_->socket(); }
  Status Take(std::vector<WakeHint>* hints, News* news) override {
    std::vector<std::string> payloads;
    *news = News{};
    if (Status s = conn_->TakeNotifications(&payloads); !s.ok()) return s;
    for (const std::string& p : payloads) {
      if (p == kSchedulesChanged) news->schedules_changed = true;
      if (p.starts_with(kSlotFreedPrefix)) ++news->slots_freed[p.substr(std::strlen(kSlotFreedPrefix))];
      size_t space = p.find(' ');
      if (space == std::string::npos) continue;
      WakeHint h;
      h.run_id = p.substr(space + 1);
      h.wake_ms = std::strtoll(p.c_str(), nullptr, 10);
      h.file = p;
      if (IsValidRunId(h.run_id)) hints->push_back(std::move(h));
    }
    return Status::Ok();
  }

 private:
  std::unique_ptr<Connection> conn_;
};

}  // namespace

// A connection of its own, listening on flow_wake: NoteWake, RequestCancel, schedule
// changes and queue slots given back announce there.
Result<std::unique_ptr<StoreImpl::WakeWatch>> PgStore::WatchWakes() {
  Result<std::unique_ptr<Connection>> conn = Connection::Open(address_);
  if (!conn.ok()) return conn.status();
  if (Status s = (*conn)->ExecScript("LISTEN flow_wake"); !s.ok()) return s;
  return std::unique_ptr<StoreImpl::WakeWatch>(new PgWakeWatch(std::move(conn.value())));
}

Status PgStore::ListWakeHints(std::vector<WakeHint>* out) const {
  static constexpr char kList[] =
      "SELECT id, wake_hint_ms FROM flow_runs WHERE wake_hint_ms IS NOT NULL ORDER BY wake_hint_ms, id";
  Result<Rows> r = conn_->Exec(kList);
  if (!r.ok()) return r.status();
  for (int i = 0; i < r->size(); ++i) {
    std::string id(r->Bytes(i, 0));
    const int64_t wake_ms = r->Int(i, 1);
    out->push_back({wake_ms, id, fmt::format("{} {}", wake_ms, id)});
  }
  return Status::Ok();
}

void PgStore::DropWakeHint(const WakeHint& hint) {
  static constexpr char kDrop[] =
      "UPDATE flow_runs SET wake_hint_ms = NULL WHERE id = $1::text AND wake_hint_ms = $2::bigint";
  (void)conn_->Exec(kDrop, {Param::Text(hint.run_id), Param::Int(hint.wake_ms)});
}

std::string PgStore::WakeDir() const { return ""; }

// --- a worker's bookkeeping, and cancel ---

Status PgStore::SetPoisoned(const std::string& id, std::string_view last_stderr) {
  static constexpr char kSet[] = "UPDATE flow_runs SET poisoned = $2::bytea WHERE id = $1::text";
  return conn_->Exec(kSet, {Param::Text(id), Param::Bytes(last_stderr)}).status();
}

bool PgStore::IsPoisoned(const std::string& id, std::string* last_stderr) const {
  static constexpr char kGet[] = "SELECT poisoned FROM flow_runs WHERE id = $1::text AND poisoned IS NOT NULL";
  Result<Rows> r = conn_->Exec(kGet, {Param::Text(id)});
  if (!r.ok() || r->size() == 0) return false;
  if (last_stderr) last_stderr->assign(r->Bytes(0, 0));
  return true;
}

void PgStore::ClearPoisoned(const std::string& id) {
  static constexpr char kClear[] = "UPDATE flow_runs SET poisoned = NULL WHERE id = $1::text";
  (void)conn_->Exec(kClear, {Param::Text(id)});
}

Result<int> PgStore::RecordCrash(const std::string& id, std::string_view) {
  static constexpr char kCount[] =
      "UPDATE flow_runs SET crashes = crashes + 1 WHERE id = $1::text RETURNING crashes::bigint";
  Result<Rows> r = conn_->Exec(kCount, {Param::Text(id)});
  if (!r.ok()) return r.status();
  if (r->size() == 0) return Status::NotFound(fmt::format("no run {}", id));
  return static_cast<int>(r->Int(0, 0));
}

void PgStore::ClearCrashes(const std::string& id) {
  static constexpr char kClear[] = "UPDATE flow_runs SET crashes = 0 WHERE id = $1::text AND crashes <> 0";
  (void)conn_->Exec(kClear, {Param::Text(id)});
}

Status PgStore::RequestCancel(const std::string& id) {
  static constexpr char kCancel[] = R"sql(
WITH asked AS (UPDATE flow_runs SET cancel = true WHERE id = $1::text)
SELECT pg_notify('flow_wake', '0 ' || $1::text))sql";
  return conn_->Exec(kCancel, {Param::Text(id)}).status();
}

bool PgStore::CancelRequested(const std::string& id) const {
  static constexpr char kAsked[] = "SELECT cancel FROM flow_runs WHERE id = $1::text";
  Result<Rows> r = conn_->Exec(kAsked, {Param::Text(id)});
  return r.ok() && r->size() > 0 && r->Bool(0, 0);
}

}  // namespace flow::store::pg
