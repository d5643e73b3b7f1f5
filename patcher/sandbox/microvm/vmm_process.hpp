#pragma once

// The patchvisor-vmm child process of the microvm sandbox, owned RAII-style:
// started with clone3(CLONE_PIDFD) so every later signal and wait goes
// through a pidfd and can never hit a reused pid; it dies with the thread
// that started it (PR_SET_PDEATHSIG), so a killed patchvisor never leaves
// a VM running.

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "patcher/sandbox/child_process.hpp"

namespace pv::sandbox {

struct VmmLaunch {
    std::string program;
    std::vector<std::string> arguments;  // argv[0] first
    int stdout_fd = -1;
    int stderr_fd = -1;
};

// The pidfd owner (kill, peek, reap, kill-and-reap on destruction) is
// ChildProcess; this adds only how the VMM starts.
class VmmProcess : public ChildProcess {
  public:
    // Returns once the program runs (exec succeeded) or failed to start.
    [[nodiscard]] static Result<VmmProcess> spawn(const VmmLaunch& launch);

  private:
    VmmProcess(pid_t pid, Fd pidfd) : ChildProcess(pid, std::move(pidfd), "patchvisor-vmm") {}
};

}  // namespace pv::sandbox
