// A run's database as rows of flow_run_keys (docs/checkpoint.md, "The PostgreSQL store").
#pragma once
#include <memory>
#include <string>

#include "store/pg/connection.h"
#include "store/store.h"

namespace flow::store::pg {

// `owner`: the lease this process holds on the run; every write commits only while the
// run's lease is still that (a worker that lost its lease to another writes nothing).
// Empty: read only. `snapshot`: a connection of its own in a read-only transaction, which
// the database keeps (every read then sees one moment of the run, whatever its process
// writes meanwhile).
std::unique_ptr<RunDb> NewPgRunDb(Connection* conn, std::string run, std::string owner,
                                  std::unique_ptr<Connection> snapshot = nullptr);

}  // namespace flow::store::pg
