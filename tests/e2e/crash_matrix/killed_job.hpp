#pragma once

// One `patchvisor patch` run that is SIGKILLed when a chosen phase line
// appears on its standard error, or after a chosen delay.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace pv::test {

struct KillPlan {
    // Kill as soon as the line of this phase appears ("" = no phase).
    // "start" kills right after the fork.
    std::string after_phase;
    // Or kill this long after the start (when after_phase is empty).
    std::chrono::milliseconds delay{0};
};

struct KilledJob {
    int pid = 0;
    bool killed = false;  // false: it ended by itself before the kill point
    int exit_code = -1;   // when it ended by itself
    std::chrono::duration<double> elapsed{0};
    std::vector<std::string> phases;  // the phase lines seen, in order
    std::string stderr_text;
};

// Runs ARGUMENTS (argv[0] first) with standard output to /dev/null and
// standard error read line by line, and kills it as PLAN says.
[[nodiscard]] KilledJob run_and_kill(const std::vector<std::string>& arguments,
                                     const KillPlan& plan);

}  // namespace pv::test
