#pragma once

// Runs the jail's PID 1 from a thread of its own and enforces the deadline:
// the thread spawns the process (so PR_SET_PDEATHSIG is tied to a thread
// that lives exactly as long as the process), waits on its pidfd, kills it
// when the deadline passes or stop() is called, and reaps it.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "patcher/sandbox/jail/jail_process.hpp"
#include "patcher/sandbox/sandbox.hpp"

namespace pv::sandbox {

class Supervisor {
  public:
    using Clock = std::chrono::steady_clock;

    // Returns once the process runs (exec succeeded) or failed to start.
    [[nodiscard]] static Result<std::unique_ptr<Supervisor>> start(JailSpec spec,
                                                                   Clock::time_point deadline);
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;
    // stop(), then joins the thread.
    ~Supervisor();

    // The process's pid in our pid namespace (for SO_PEERCRED checks).
    [[nodiscard]] pid_t pid() const { return m_pid; }
    [[nodiscard]] std::optional<AgentOutcome> outcome() const;
    // Waits until the process ended or UNTIL passed; in the latter case it
    // is killed (Stopped). An UNTIL at or past the deadline waits for the
    // deadline's own kill (TimedOut).
    [[nodiscard]] AgentOutcome wait_until(Clock::time_point until);
    // Kills the process if it still runs and waits until it is reaped.
    [[nodiscard]] AgentOutcome stop();

  private:
    Supervisor(Clock::time_point deadline, Fd wake)
        : m_deadline(deadline), m_wake(std::move(wake)) {}
    void run(JailSpec spec);
    void supervise(JailProcess& process);
    void finish(AgentOutcome outcome);

    const Clock::time_point m_deadline;
    Fd m_wake;  // an eventfd written by stop()
    pid_t m_pid = -1;

    mutable std::mutex m_mutex;
    std::condition_variable m_changed;
    bool m_started = false;
    std::optional<Error> m_start_error;
    std::optional<AgentOutcome> m_outcome;
    std::thread m_thread;
};

}  // namespace pv::sandbox
