#pragma once

// PID 1 of fresh mount, pid, ipc, uts and network namespaces (clone3(2)),
// owned RAII-style: killing it makes the kernel kill everything else in
// its pid namespace, and the mount namespace (with whatever the agent
// mounted) goes away with the last of them.
//
// Inside, before exec: mounts made private (nothing propagates back to the
// host), a minimal root pivoted into with the host's tree detached
// (jail_root.hpp), a hostname, loopback up and nothing else (a new network
// namespace has no other interface), stdin from /dev/null, stdout and
// stderr to the log, and last the confinement (confinement.hpp: no_new_privs,
// capabilities dropped, seccomp filter).

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "patcher/sandbox/child_process.hpp"

namespace pv::sandbox {

struct JailSpec {
    // Opened here and executed by descriptor: no host path is visible
    // inside.
    std::string program;
    // argv[0] first.
    std::vector<std::string> arguments;
    // Block device nodes recreated in the jail's /dev ("/dev/loop3", ...).
    std::vector<std::string> disk_nodes;
    // The host's listening socket, bound to kJailSocketPath inside.
    std::string socket_path;
    int log_fd = -1;
    std::string hostname = "patchvisor-jail";
};

// The pidfd owner is ChildProcess; this adds only how the jail starts.
// Its kill() is SIGKILL to PID 1, which takes the whole pid namespace down.
class JailProcess : public ChildProcess {
  public:
    // Starts the process. The calling thread should live as long as the
    // process: PR_SET_PDEATHSIG fires when the thread that created it ends.
    [[nodiscard]] static Result<JailProcess> spawn(const JailSpec& spec);

  private:
    JailProcess(pid_t pid, Fd pidfd) : ChildProcess(pid, std::move(pidfd), "jail PID 1") {}
};

}  // namespace pv::sandbox
