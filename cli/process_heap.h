// How the flow process sets up its heap, before anything is allocated (cli/process_heap.cc).
#pragma once

namespace flow::cli {

// Keeps freed memory for reuse and puts the start of the heap on transparent huge pages.
// The flow binary calls it first thing in main; bench/durable_bench does too, so that its
// figures are those of a flow process.
void SetUpProcessHeap();

}  // namespace flow::cli
