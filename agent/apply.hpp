#pragma once

// Apply (install staged packages) and Run (allow-listed maintenance
// commands), both with the guest's own package manager in a chroot.

#include <string>
#include <vector>

#include "agent/process.hpp"
#include "common/error.hpp"
#include "proto/agent.pb.h"

namespace pv::agent {

// Outcome of a package-manager command: its exit status and the last lines
// it printed, which carry the reason when it failed.
struct CommandOutcome {
    int exit_code = 0;
    std::string output_tail;
};

// Installs the staged files (chroot paths) with dpkg -i or rpm -U, with the
// no-services guard (agent/service_guard.hpp) in place for the duration.
[[nodiscard]] Result<CommandOutcome> install_packages(const std::string& root,
                                                      wire::PackageManager manager,
                                                      const std::vector<std::string>& paths,
                                                      const LineCallback& on_line);

// True when argv is one of the maintenance commands the host may run.
[[nodiscard]] bool is_allowed_command(const std::vector<std::string>& argv);

// Runs an allowed command in the chroot (checked again here).
[[nodiscard]] Result<CommandOutcome> run_allowed(const std::string& root,
                                                 const std::vector<std::string>& argv,
                                                 const LineCallback& on_line);

}  // namespace pv::agent
