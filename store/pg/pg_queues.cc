// Queue caps, queue slots and schedules of the PostgreSQL store (store/queues.h,
// store/schedules.h): rows of flow_queues, flow_queue_slots and flow_schedules
// (docs/checkpoint.md, "The PostgreSQL store").
//
// A slot is a row held under a lease, as a run is: taken by an upsert that only wins if
// the row is free or its lease ran out, renewed with the process's run leases, given back
// when the run stops executing. A process that dies here gives its slots up at once (its
// owner names a dead pid of this machine); one on another machine, when its leases run out.
#include <fmt/format.h>

#include "store/pg/pg_store.h"
#include "store/pg/schema.h"

namespace flow::store::pg {

namespace {

class PgQueueSlot final : public QueueSlot {
 public:
  PgQueueSlot(std::shared_ptr<PgStore> st, std::string queue, uint32_t index)
      : QueueSlot(index), st_(std::move(st)), queue_(std::move(queue)) {}
  ~PgQueueSlot() override { st_->ReleaseQueueSlot(queue_, index()); }

 private:
  std::shared_ptr<PgStore> st_;
  std::string queue_;
};

// The advisory lock on the store's connection, as the code lock is.
class PgScheduleLock final : public ScheduleLock {
 public:
  explicit PgScheduleLock(std::shared_ptr<PgStore> st) : st_(std::move(st)) {}
  ~PgScheduleLock() override {
    static constexpr char kUnlock[] = "SELECT pg_advisory_unlock($1::bigint)";
    (void)st_->connection().Exec(kUnlock, {Param::Int(kScheduleLockKey)});
  }

 private:
  std::shared_ptr<PgStore> st_;
};

}  // namespace

std::string SlotKey(const std::string& queue, uint32_t index) { return queue + ":" + std::to_string(index); }

// --- queue caps ---

Result<uint32_t> PgStore::ReadQueueCap(const std::string& queue) const {
  static constexpr char kRead[] = "SELECT cap FROM flow_queues WHERE name = $1::text";
  Result<Rows> r = conn_->Exec(kRead, {Param::Text(queue)});
  if (!r.ok()) return r.status();
  return r->size() ? static_cast<uint32_t>(r->Int(0, 0)) : 0u;
}

Status PgStore::WriteQueueCap(const std::string& queue, uint32_t cap) {
  if (Status s = conn_->SetSynchronousCommit(true); !s.ok()) return s;
  static constexpr char kRemove[] = "DELETE FROM flow_queues WHERE name = $1::text";
  static constexpr char kWrite[] = R"sql(
INSERT INTO flow_queues (name, cap) VALUES ($1::text, $2::bigint) ON CONFLICT (name) DO UPDATE SET cap = EXCLUDED.cap)sql";
  if (cap == 0) return conn_->Exec(kRemove, {Param::Text(queue)}).status();
  return conn_->Exec(kWrite, {Param::Text(queue), Param::Int(cap)}).status();
}

Status PgStore::ListCappedQueues(std::vector<std::string>* out) const {
  out->clear();
  static constexpr char kList[] = "SELECT name FROM flow_queues ORDER BY name";
  Result<Rows> r = conn_->Exec(kList);
  if (!r.ok()) return r.status();
  for (int i = 0; i < r->size(); ++i) out->emplace_back(r->Bytes(i, 0));
  return Status::Ok();
}

// --- queue slots ---

Result<bool> PgStore::TakeQueueSlot(const std::string& queue, uint32_t index, const std::string& dead_holder) {
  static constexpr char kTake[] = R"sql(
INSERT INTO flow_queue_slots AS s (queue, slot, owner, until)
VALUES ($1::text, $2::bigint, $3::text, now() + $4::bigint * interval '1 millisecond')
ON CONFLICT (queue, slot) DO UPDATE SET owner = EXCLUDED.owner, until = EXCLUDED.until
WHERE s.owner IS NULL OR s.until < now())sql";
  static constexpr char kTakeFrom[] = R"sql(
UPDATE flow_queue_slots SET owner = $3::text, until = now() + $4::bigint * interval '1 millisecond'
WHERE queue = $1::text AND slot = $2::bigint AND owner = $5::text)sql";
  std::vector<Param> params = {Param::Text(queue), Param::Int(index), Param::Text(owner_), Param::Int(lease_ms_)};
  if (!dead_holder.empty()) params.push_back(Param::Text(dead_holder));
  Result<Rows> r = conn_->Exec(dead_holder.empty() ? kTake : kTakeFrom, params);
  if (!r.ok()) return r.status();
  return r->Changed() == 1;
}

// One read of the slots held, then a take of the lowest one no live process holds: a full
// queue costs one statement, whatever its cap. A take another process won meanwhile is
// tried again with a fresh read: each such loss is a slot that process took, so the tries
// end, with a slot or with the queue full.
Status PgStore::TryTakeQueueSlot(const std::string& queue, uint32_t cap, std::unique_ptr<QueueSlot>* slot) {
  slot->reset();
  if (Status s = conn_->SetSynchronousCommit(true); !s.ok()) return s;
  static constexpr char kHeld[] = R"sql(
SELECT slot, owner FROM flow_queue_slots
WHERE queue = $1::text AND slot < $2::bigint AND owner IS NOT NULL AND until >= now() ORDER BY slot)sql";
  for (;;) {
    Result<Rows> held = conn_->Exec(kHeld, {Param::Text(queue), Param::Int(cap)});
    if (!held.ok()) return held.status();
    uint32_t pick = 0;
    std::string dead_holder;  // pick's holder, a process of this machine that died
    for (int i = 0; i < held->size() && held->Int(i, 0) == pick; ++i, ++pick) {
      if (OwnerDiedHere(held->Bytes(i, 1))) {
        dead_holder = held->Bytes(i, 1);
        break;
      }
    }
    if (pick >= cap) return Status::Ok();  // every slot held by a live process
    Result<bool> taken = TakeQueueSlot(queue, pick, dead_holder);
    if (!taken.ok()) return taken.status();
    if (*taken) {
      Status renewing;
      {
        std::lock_guard<std::mutex> lock(mu_);
        slots_.insert({queue, pick});
        renewing = StartRenewer();
      }
      if (!renewing.ok()) {
        ReleaseQueueSlot(queue, pick);
        return renewing;
      }
      *slot = std::make_unique<PgQueueSlot>(shared_from_this(), queue, pick);
      return Status::Ok();
    }
  }
}

void PgStore::ReleaseQueueSlot(const std::string& queue, uint32_t index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    slots_.erase({queue, index});
  }
  // Announced: a worker whose queued run waited for room tries it again at once.
  static constexpr char kRelease[] = R"sql(
WITH freed AS (UPDATE flow_queue_slots SET owner = NULL, until = NULL
               WHERE queue = $1::text AND slot = $2::bigint AND owner = $3::text RETURNING 1)
SELECT pg_notify('flow_wake', $4::text || $1::text) FROM freed)sql";
  (void)conn_->Exec(kRelease, {Param::Text(queue), Param::Int(index), Param::Text(owner_), Param::Text(kSlotFreedPrefix)});
  StopRenewerIfIdle();
}

uint32_t PgStore::CountHeldQueueSlots(const std::string& queue, uint32_t cap) const {
  static constexpr char kHeld[] = R"sql(
SELECT owner FROM flow_queue_slots
WHERE queue = $1::text AND slot < $2::bigint AND owner IS NOT NULL AND until >= now())sql";
  Result<Rows> r = conn_->Exec(kHeld, {Param::Text(queue), Param::Int(cap)});
  if (!r.ok()) return 0;  // a hint (QueuedRunReady): TryTakeQueueSlot decides
  uint32_t held = 0;
  for (int i = 0; i < r->size(); ++i)
    if (!OwnerDiedHere(r->Bytes(i, 0))) ++held;
  return held;
}

// --- schedules ---

// Waited for a lease at most (lock_timeout, for this transaction only; the lock itself is
// the session's and outlives it): a holder whose machine was lost keeps it until the server
// sees its connection dead (its keepalives: store/pg/connection.cc), and meanwhile a worker
// must go on executing runs rather than wait on it.
Result<std::unique_ptr<ScheduleLock>> PgStore::LockSchedules() {
  static constexpr char kLock[] = "SELECT pg_advisory_lock($1::bigint)";
  Status s = conn_->InTransaction([&]() -> Status {
    if (Status t = conn_->ExecScript(fmt::format("SET LOCAL lock_timeout = {}", lease_ms_)); !t.ok()) return t;
    return conn_->Exec(kLock, {Param::Int(kScheduleLockKey)}).status();
  });
  if (!s.ok()) {
    if (s.message().find("lock timeout") != std::string::npos)
      return Status::IOError(fmt::format("the schedules are locked by another process for more than {} ms", lease_ms_));
    return s;
  }
  return std::unique_ptr<ScheduleLock>(new PgScheduleLock(shared_from_this()));
}

// Announced on flow_wake: workers read the schedules again for their next tick.
Status PgStore::WriteSchedule(const ScheduleRecord& record) {
  if (Status s = conn_->SetSynchronousCommit(true); !s.ok()) return s;
  static constexpr char kWrite[] = R"sql(
WITH written AS (INSERT INTO flow_schedules (name, code_hash, record) VALUES ($1::text, $2::text, $3::bytea)
                 ON CONFLICT (name) DO UPDATE SET code_hash = EXCLUDED.code_hash, record = EXCLUDED.record)
SELECT pg_notify('flow_wake', $4::text))sql";
  return conn_->Exec(kWrite, {Param::Text(record.name), Param::Text(record.code_hash), Param::Bytes(EncodeSchedule(record)),
                              Param::Text(kSchedulesChanged)})
      .status();
}

Result<ScheduleRecord> PgStore::ReadSchedule(const std::string& name) const {
  static constexpr char kRead[] = "SELECT record FROM flow_schedules WHERE name = $1::text";
  Result<Rows> r = conn_->Exec(kRead, {Param::Text(name)});
  if (!r.ok()) return r.status();
  if (r->size() == 0)
    return Status::NotFound(fmt::format("no schedule {} in the store {}", name, RedactedAddress(address_)));
  return DecodeNamedSchedule(r->Bytes(0, 0), name);
}

Status PgStore::DeleteSchedule(const std::string& name) {
  if (Status s = conn_->SetSynchronousCommit(true); !s.ok()) return s;
  static constexpr char kDelete[] = R"sql(
WITH deleted AS (DELETE FROM flow_schedules WHERE name = $1::text RETURNING 1)
SELECT count(*)::bigint, pg_notify('flow_wake', $2::text) FROM deleted)sql";
  Result<Rows> r = conn_->Exec(kDelete, {Param::Text(name), Param::Text(kSchedulesChanged)});
  if (!r.ok()) return r.status();
  if (r->Int(0, 0) == 0)
    return Status::NotFound(fmt::format("no schedule {} in the store {}", name, RedactedAddress(address_)));
  return Status::Ok();
}

std::vector<ScheduleRecord> PgStore::ListSchedules(
    const std::function<void(const std::string& name, const Status&)>& unreadable) const {
  static constexpr char kList[] = "SELECT name, record FROM flow_schedules ORDER BY name";
  std::vector<ScheduleRecord> out;
  Result<Rows> r = conn_->Exec(kList);
  if (!r.ok()) {
    unreadable("*", r.status());
    return out;
  }
  for (int i = 0; i < r->size(); ++i) {
    std::string name(r->Bytes(i, 0));
    Result<ScheduleRecord> s = IsValidScheduleName(name) ? DecodeNamedSchedule(r->Bytes(i, 1), name)
                                                         : Status::Corruption("a schedule's row names no schedule");
    if (s.ok()) out.push_back(std::move(s.value()));
    else unreadable(name, s.status());
  }
  return out;
}

}  // namespace flow::store::pg
