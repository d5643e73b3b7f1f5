#pragma once

// The subcommands of the patchvisor CLI. Each adds itself to the app and
// stores its outcome in a CommandResult that main() turns into an exit code.

#include <CLI/App.hpp>

#include "common/error.hpp"

namespace pv::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNothingToDo = 3;

struct CommandResult {
    Result<int> outcome = kExitOk;
};

void add_img_commands(CLI::App& app, CommandResult& result);
void add_patch_commands(CLI::App& app, CommandResult& result);
void add_batch_command(CLI::App& app, CommandResult& result);
void add_gc_command(CLI::App& app, CommandResult& result);
void add_fleet_command(CLI::App& app, CommandResult& result);

}  // namespace pv::cli
