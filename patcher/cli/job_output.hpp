#pragma once

// How patch and check tell a person about finished jobs, shared by the
// image and the libvirt-domain forms of the commands.

#include <cstdio>
#include <vector>

#include "patcher/job/job.hpp"

namespace pv::cli {

// The result line of one job and, patched or missing, its packages and
// advisories; a failure goes to standard error with the agent log's path.
void print_summary(FILE* out, const patcher::JobReport& report, patcher::JobMode mode);

// 1 when any job failed, 3 when none had anything to do, else 0.
[[nodiscard]] int combined_exit_code(const std::vector<patcher::JobReport>& reports);

}  // namespace pv::cli
