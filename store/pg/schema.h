// The PostgreSQL store's schema and its version (docs/checkpoint.md, "The PostgreSQL store").
#pragma once
#include <cstdint>

#include "store/pg/connection.h"

namespace flow::store::pg {

// The keys of the store's advisory locks ("flow", then a number), every one here so that
// none is taken twice.
inline constexpr int64_t kSchemaLockKey = 0x666c6f77'00000001;    // while the schema is made (transaction)
inline constexpr int64_t kCodeLockKey = 0x666c6f77'00000002;      // LockCode: shared by run creators, exclusive by gc
inline constexpr int64_t kScheduleLockKey = 0x666c6f77'00000003;  // LockSchedules: while schedules change or fire

// The schema this flow writes; a database at a newer one is refused, an older one migrated.
inline constexpr int kSchemaVersion = 2;

// The schema's version in the database: 0 if it has none (no Flow store there yet).
Result<int> SchemaVersion(Connection& c);
// Creates the schema, or migrates an older one to kSchemaVersion, in one transaction
// (concurrent callers wait on an advisory lock); InvalidArgument if the database's is newer.
Status CreateOrMigrateSchema(Connection& c);

}  // namespace flow::store::pg
