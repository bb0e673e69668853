// A run's database as rows of flow_run_keys (docs/checkpoint.md, "The PostgreSQL store").
#pragma once
#include <memory>
#include <string>

#include "store/pg/connection.h"
#include "store/store.h"

namespace flow::store::pg {

// `owner`: the lease this process holds on the run; every write commits only while the
// run's lease is still that (a worker that lost its lease to another writes nothing).
// Empty: read only.
std::unique_ptr<RunDb> NewPgRunDb(Connection* conn, std::string run, std::string owner);

}  // namespace flow::store::pg
