// The SQL of the PostgreSQL store's schema. Each table's job and each column's meaning are
// in docs/checkpoint.md ("The PostgreSQL store"); change them only with a new version here
// and a migration step below.
#include "store/pg/schema.h"

#include <fmt/format.h>

namespace flow::store::pg {

namespace {

// Held (transaction-scoped) while the schema is created or migrated.
constexpr int64_t kSchemaLockKey = 0x666c6f77'00000001;  // "flow", 1

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
  if (Status s = c.ExecScript("BEGIN"); !s.ok()) return s;
  auto fail = [&](Status s) {
    (void)c.ExecScript("ROLLBACK");
    return s;
  };
  if (Status s = c.ExecScript(fmt::format("SELECT pg_advisory_xact_lock({})", kSchemaLockKey)); !s.ok()) return fail(s);
  Result<int> version = SchemaVersion(c);
  if (!version.ok()) return fail(version.status());
  if (*version > kSchemaVersion)
    return fail(Status::InvalidArgument(fmt::format(
        "the store was written by a newer flow (schema version {}; this flow knows up to {}): upgrade flow", *version,
        kSchemaVersion)));
  if (*version == 0) {
    if (Status s = c.ExecScript(kVersion1); !s.ok()) return fail(s);
  }
  // Later versions: a step per version from *version up, each in this transaction.
  return c.ExecScript("COMMIT");
}

}  // namespace flow::store::pg
