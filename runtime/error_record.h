// The uncaught error that ended a run, kept in its database (key `e`, docs/checkpoint.md,
// "The error record"): the run record keeps only its first line, and the VM's checkpoint
// does not keep it at all, but `flow ui` shows the whole error with its stack.
#pragma once
#include <string>
#include <string_view>

#include "vm/base/status.h"
#include "vm/error_report.h"

namespace flow::runtime {

std::string EncodeErrorRecord(const ErrorReport& error);
Status DecodeErrorRecord(std::string_view bytes, ErrorReport* error);

}  // namespace flow::runtime
