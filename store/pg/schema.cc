// The SQL of the PostgreSQL store's schema. Each table's job and each column's meaning are
// in docs/checkpoint.md ("The PostgreSQL store"); change them only with a new version here
// and a migration step below.
#include "store/pg/schema.h"

#include <fmt/format.h>

#include <iterator>

namespace flow::store::pg {

namespace {

constexpr char kVersion1[] = R"sql(
CREATE TABLE flow_schema (version integer NOT NULL);
CREATE TABLE flow_code (
  hash text PRIMARY KEY,
  bytecode bytea NOT NULL,
  source bytea);
CREATE TABLE flow_runs (
  id text COLLATE "C" PRIMARY KEY,
  record bytea,
  status smallint,
  code_hash text,
  origin bytea,
  lease_owner text,
  lease_pid bigint,
  lease_until timestamptz,
  cancel boolean NOT NULL DEFAULT false,
  poisoned bytea,
  crashes integer NOT NULL DEFAULT 0,
  wake_hint_ms bigint);
CREATE INDEX flow_runs_wake ON flow_runs (wake_hint_ms) WHERE wake_hint_ms IS NOT NULL;
CREATE INDEX flow_runs_unended ON flow_runs (id) WHERE status NOT IN (2, 3, 5);
CREATE TABLE flow_run_keys (
  run text COLLATE "C" NOT NULL,
  key bytea NOT NULL,
  value bytea NOT NULL,
  PRIMARY KEY (run, key));
CREATE TABLE flow_shared (
  name text PRIMARY KEY,
  bytes bytea NOT NULL);
INSERT INTO flow_schema VALUES (1);
)sql";

// Version 2: queue caps and their slots (leased as runs are), and schedules.
constexpr char kVersion2[] = R"sql(
CREATE TABLE flow_queues (
  name text COLLATE "C" PRIMARY KEY,
  cap bigint NOT NULL);
CREATE TABLE flow_queue_slots (
  queue text COLLATE "C" NOT NULL,
  slot bigint NOT NULL,
  owner text,
  until timestamptz,
  PRIMARY KEY (queue, slot));
CREATE TABLE flow_schedules (
  name text COLLATE "C" PRIMARY KEY,
  code_hash text NOT NULL,
  record bytea NOT NULL);
UPDATE flow_schema SET version = 2;
)sql";

// The step from version K to K + 1, at index K (0: an empty database).
constexpr const char* kSteps[] = {kVersion1, kVersion2};
static_assert(std::size(kSteps) == kSchemaVersion);

}  // namespace

Result<int> SchemaVersion(Connection& c) {
  // A catalog read, not to_regclass: a prepared statement may fold that to what it was
  // when first planned, and then miss a schema another process has just created.
  Result<Rows> has = c.Exec(
      "SELECT count(*)::bigint FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'flow_schema'");
  if (!has.ok()) return has.status();
  if (has->Int(0, 0) == 0) return 0;
  Result<Rows> v = c.Exec("SELECT max(version)::bigint FROM flow_schema");
  if (!v.ok()) return v.status();
  if (v->size() != 1 || v->IsNull(0, 0)) return Status::Corruption("the store's flow_schema table holds no version");
  return static_cast<int>(v->Int(0, 0));
}

Status CreateOrMigrateSchema(Connection& c) {
  return c.InTransaction([&]() -> Status {
    if (Status s = c.ExecScript(fmt::format("SELECT pg_advisory_xact_lock({})", kSchemaLockKey)); !s.ok()) return s;
    Result<int> version = SchemaVersion(c);
    if (!version.ok()) return version.status();
    if (*version > kSchemaVersion)
      return Status::InvalidArgument(fmt::format(
          "the store was written by a newer flow (schema version {}; this flow knows up to {}): upgrade flow", *version,
          kSchemaVersion));
    for (int v = *version; v < kSchemaVersion; ++v)  // every step in this one transaction
      if (Status s = c.ExecScript(kSteps[v]); !s.ok()) return s;
    return Status::Ok();
  });
}

}  // namespace flow::store::pg
