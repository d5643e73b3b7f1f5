#pragma once

// patchvisor fleet submit|status (fleet_spec.hpp describes a fleet).

#include <CLI/App.hpp>

#include "patcher/cli/commands.hpp"

namespace pv::cli {

// `fleet status` exits so while tasks have not ended (and none failed).
inline constexpr int kExitPending = 4;

void add_fleet_command(CLI::App& app, CommandResult& result);
void add_status_command(CLI::App& fleet, CommandResult& result);

}  // namespace pv::cli
