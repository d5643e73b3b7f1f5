#pragma once

// The patchvisor-vmm child process of the microvm sandbox, owned RAII-style:
// started with clone3(CLONE_PIDFD) so every later signal and wait goes
// through a pidfd and can never hit a reused pid; it dies with the thread
// that started it (PR_SET_PDEATHSIG), so a killed patchvisor never leaves
// a VM running.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace pv::sandbox {

struct VmmLaunch {
    std::string program;
    std::vector<std::string> arguments;  // argv[0] first
    int stdout_fd = -1;
    int stderr_fd = -1;
};

// How a reaped child ended, from waitid(2).
struct ChildEnd {
    bool exited = false;  // else killed by `signal`
    int exit_status = 0;
    int signal = 0;
};

class VmmProcess {
  public:
    // Returns once the program runs (exec succeeded) or failed to start.
    [[nodiscard]] static Result<VmmProcess> spawn(const VmmLaunch& launch);

    VmmProcess(VmmProcess&& other) noexcept;
    VmmProcess& operator=(VmmProcess&&) = delete;
    VmmProcess(const VmmProcess&) = delete;
    VmmProcess& operator=(const VmmProcess&) = delete;
    // Kills and reaps the process if that has not happened yet.
    ~VmmProcess();

    [[nodiscard]] pid_t pid() const { return m_pid; }
    // Becomes readable when the process ends (poll(2)).
    [[nodiscard]] int pidfd() const { return m_pidfd.get(); }

    // SIGKILL through the pidfd; harmless once the process ended.
    [[nodiscard]] Result<void> kill() const;
    // How it ended, without reaping it (WNOWAIT), or nothing while it runs.
    [[nodiscard]] std::optional<ChildEnd> peek() const;
    // Reaps the process if it has ended (or, with BLOCK, once it has).
    [[nodiscard]] Result<std::optional<ChildEnd>> reap(bool block);

  private:
    VmmProcess(pid_t pid, Fd pidfd) : m_pid(pid), m_pidfd(std::move(pidfd)) {}

    pid_t m_pid = -1;
    Fd m_pidfd;
    bool m_reaped = false;
};

}  // namespace pv::sandbox
