// The subcommands of issue 12's queued and scheduled runs, registered on the `flow`
// command by main.cc: flow submit, flow queue (queue_commands.cc), flow schedule
// (schedule_commands.cc). Each Add... returns the dispatch of its subcommands: the exit
// code if one of them was parsed, nullopt otherwise.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <optional>

#include "cli/commands.h"

namespace flow::cli {

using Dispatch = std::function<std::optional<int>()>;
// `run`: flow run's options, shared by submit (FILE, --arg, --store, --run-id, ...);
// `add_budgets`: adds flow run's budget options to a subcommand.
Dispatch AddQueueCommands(CLI::App& app, RunOptions& run, const std::function<void(CLI::App*)>& add_budgets);
Dispatch AddScheduleCommands(CLI::App& app, RunOptions& run);
// flow store init, flow migrate (store_commands.cc).
Dispatch AddStoreCommands(CLI::App& app, RunOptions& run);

}  // namespace flow::cli
