#pragma once

// patch --domain and check --domain: the jobs on a libvirt domain's disks.

#include <memory>
#include <string>

#include <CLI/App.hpp>

#include "patcher/cli/job_flags.hpp"

namespace pv::cli {

struct DomainFlags {
    std::string name;  // "" when the command names images instead
    std::string uri;   // libvirt's default when ""
};

// Adds --domain and --connect to COMMAND (patch or check), which then takes
// either IMAGE... or --domain, not both.
[[nodiscard]] std::shared_ptr<DomainFlags> add_domain_flags(CLI::App& command);

// Runs the job on the domain's writable disks and prints as `patch` does;
// the JSON report is an array with one object per disk, each naming its
// domain.
[[nodiscard]] Result<int> run_domain(const JobFlags& flags, const DomainFlags& domain,
                                     patcher::JobMode mode);

}  // namespace pv::cli
