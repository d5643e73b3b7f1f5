#pragma once

// One `patchvisor patch` run that is SIGKILLed when a chosen phase line
// appears on its standard error, or after a chosen delay.

#include <chrono>
#include <functional>
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
    // SIGKILLed but still not gone after a few seconds (stuck in the kernel
    // on its own FUSE export), until FREE_STUCK ran.
    bool stuck_in_exit = false;
    bool reaped = false;  // false: still there after FREE_STUCK and 30 s more
};

// Runs ARGUMENTS (argv[0] first) with standard output to /dev/null and
// standard error read line by line, and kills it as PLAN says. If it has not
// died 5 s after the kill, runs FREE_STUCK and waits up to 30 s more (then
// gives up, leaving exit_code -1).
[[nodiscard]] KilledJob run_and_kill(
    const std::vector<std::string>& arguments, const KillPlan& plan,
    const std::function<void()>& free_stuck = [] {});

}  // namespace pv::test
