// The PostgreSQL store's schema and its version (docs/checkpoint.md, "The PostgreSQL store").
#pragma once
#include "store/pg/connection.h"

namespace flow::store::pg {

// The schema this flow writes; a database at a newer one is refused, an older one migrated.
inline constexpr int kSchemaVersion = 1;

// The schema's version in the database: 0 if it has none (no Flow store there yet).
Result<int> SchemaVersion(Connection& c);
// Creates the schema, or migrates an older one to kSchemaVersion, in one transaction
// (concurrent callers wait on an advisory lock); InvalidArgument if the database's is newer.
Status CreateOrMigrateSchema(Connection& c);

}  // namespace flow::store::pg
