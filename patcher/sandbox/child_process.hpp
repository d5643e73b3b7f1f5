#pragma once

// A child process owned through its pidfd, RAII-style; the common part of
// the patchvisor-vmm child (microvm/vmm_process.hpp) and the jail's PID 1
// (jail/jail_process.hpp), which differ only in how they start. Started
// with clone3(CLONE_PIDFD), every later signal and wait goes through the
// pidfd and so can never hit a reused pid.

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace pv::sandbox {

// How a reaped child ended, from waitid(2).
struct ChildEnd {
    bool exited = false;  // else killed by `signal`
    int exit_status = 0;
    int signal = 0;
};

class ChildProcess {
  public:
    // Takes over child PID and its PIDFD; NAME says what it is in errors
    // ("kill <NAME> (pid N)").
    ChildProcess(pid_t pid, Fd pidfd, std::string name)
        : m_pid(pid), m_pidfd(std::move(pidfd)), m_name(std::move(name)) {}
    ChildProcess(ChildProcess&& other) noexcept;
    ChildProcess& operator=(ChildProcess&&) = delete;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    // Kills and reaps the process if that has not happened yet.
    ~ChildProcess();

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
    pid_t m_pid = -1;
    Fd m_pidfd;
    bool m_reaped = false;
    std::string m_name;
};

}  // namespace pv::sandbox
