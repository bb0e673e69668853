// Portable run images: a suspended or crashed run as one file, to resume in another store
// on another machine (`flow export RUN > run.fvm`, `flow import run.fvm`).
#pragma once
#include <string>
#include <string_view>

#include "store/store.h"

namespace flow::runtime {

// The image of run `id` (which must not be live).
Status ExportRun(store::Store& st, const std::string& id, std::string* image);
// Adds the run of `image` to the store (its id must be free there); returns the id.
Result<std::string> ImportRun(store::Store& st, std::string_view image);

}  // namespace flow::runtime
