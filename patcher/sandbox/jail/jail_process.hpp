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

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

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

// How a reaped process ended, from waitid(2).
struct ProcessEnd {
    bool exited = false;  // else killed by `signal`
    int exit_status = 0;
    int signal = 0;
};

class JailProcess {
  public:
    // Starts the process. The calling thread should live as long as the
    // process: PR_SET_PDEATHSIG fires when the thread that created it ends.
    [[nodiscard]] static Result<JailProcess> spawn(const JailSpec& spec);

    JailProcess(JailProcess&& other) noexcept;
    JailProcess& operator=(JailProcess&&) = delete;
    JailProcess(const JailProcess&) = delete;
    JailProcess& operator=(const JailProcess&) = delete;
    // Kills and reaps the process if that has not happened yet.
    ~JailProcess();

    [[nodiscard]] pid_t pid() const { return m_pid; }
    // Becomes readable when the process ends (poll(2)).
    [[nodiscard]] int pidfd() const { return m_pidfd.get(); }

    // SIGKILL to PID 1, which takes the whole pid namespace down. Through
    // the pidfd, so it can never hit a reused pid; harmless once it ended.
    [[nodiscard]] Result<void> kill() const;
    // Reaps the process if it has ended (or, with BLOCK, once it has).
    [[nodiscard]] Result<std::optional<ProcessEnd>> reap(bool block);

  private:
    JailProcess(pid_t pid, Fd pidfd) : m_pid(pid), m_pidfd(std::move(pidfd)) {}

    pid_t m_pid = -1;
    Fd m_pidfd;
    bool m_reaped = false;
};

}  // namespace pv::sandbox
