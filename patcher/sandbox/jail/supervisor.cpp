#include "patcher/sandbox/jail/supervisor.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace pv::sandbox {

Result<std::unique_ptr<Supervisor>> Supervisor::start(JailSpec spec, Clock::time_point deadline) {
    const int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0)
        return fail(errno_error("eventfd for the jail supervisor"));
    std::unique_ptr<Supervisor> supervisor(new Supervisor(deadline, Fd(wake)));
    Supervisor& self = *supervisor;
    self.m_thread =
        std::thread([&self, spec = std::move(spec)]() mutable { self.run(std::move(spec)); });
    std::unique_lock lock(self.m_mutex);
    self.m_changed.wait(lock, [&] { return self.m_started; });
    if (self.m_start_error) {
        const Error error = *self.m_start_error;
        lock.unlock();
        return fail(error);  // the destructor joins the finished thread
    }
    return supervisor;
}

Supervisor::~Supervisor() {
    (void)stop();
    if (m_thread.joinable())
        m_thread.join();
}

void Supervisor::run(JailSpec spec) {
    auto spawned = JailProcess::spawn(spec);
    {
        std::lock_guard lock(m_mutex);
        m_started = true;
        if (!spawned) {
            m_start_error = spawned.error();
            // Nothing ran, so nothing can be waited for: report it as stopped.
            m_outcome = AgentOutcome{Ending::Stopped, 0, 0};
        } else {
            m_pid = spawned->pid();
        }
    }
    m_changed.notify_all();
    if (spawned)
        supervise(*spawned);
}

void Supervisor::supervise(JailProcess& process) {
    pollfd watched[2] = {{process.pidfd(), POLLIN, 0}, {m_wake.get(), POLLIN, 0}};
    bool timed_out = false;
    bool stopped = false;
    for (;;) {
        int timeout_ms = -1;
        if (!timed_out && !stopped) {
            const auto left =
                std::chrono::ceil<std::chrono::milliseconds>(m_deadline - Clock::now());
            timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1 << 30));
        }
        const int ready = ::poll(watched, 2, timeout_ms);
        if (ready < 0 && errno != EINTR) {
            std::fprintf(stderr, "patchvisor: jail supervisor poll: %s\n", std::strerror(errno));
            stopped = true;
            (void)process.kill();
            watched[1].fd = -1;
            continue;
        }
        if (ready > 0 && watched[0].revents != 0)
            break;
        if (ready > 0 && watched[1].revents != 0) {
            stopped = !timed_out;
            watched[1].fd = -1;  // stays readable; stop watching it
        } else if (ready == 0) {
            timed_out = true;
        }
        if (timed_out || stopped) {
            if (auto killed = process.kill(); !killed)
                std::fprintf(stderr, "patchvisor: %s\n", killed.error().message().c_str());
        }
    }
    auto reaped = process.reap(true);
    AgentOutcome outcome{Ending::Stopped, 0, 0};
    if (reaped && *reaped) {
        const ChildEnd& end = **reaped;
        const bool ours = !end.exited && end.signal == SIGKILL && (timed_out || stopped);
        if (end.exited)
            outcome = {Ending::Exited, end.exit_status, 0};
        else if (ours)
            outcome = {timed_out ? Ending::TimedOut : Ending::Stopped, 0, SIGKILL};
        else
            outcome = {Ending::Signaled, 0, end.signal};
    } else if (!reaped) {
        std::fprintf(stderr, "patchvisor: %s\n", reaped.error().message().c_str());
    }
    finish(outcome);
}

void Supervisor::finish(AgentOutcome outcome) {
    {
        std::lock_guard lock(m_mutex);
        m_outcome = outcome;
    }
    m_changed.notify_all();
}

std::optional<AgentOutcome> Supervisor::outcome() const {
    std::lock_guard lock(m_mutex);
    return m_outcome;
}

AgentOutcome Supervisor::wait_until(Clock::time_point until) {
    {
        std::unique_lock lock(m_mutex);
        // At the deadline the supervising thread kills by itself, and the
        // outcome must say so (TimedOut), not that we stopped it.
        if (until >= m_deadline) {
            m_changed.wait(lock, [&] { return m_outcome.has_value(); });
            return *m_outcome;
        }
        if (m_changed.wait_until(lock, until, [&] { return m_outcome.has_value(); }))
            return *m_outcome;
    }
    return stop();
}

AgentOutcome Supervisor::stop() {
    const uint64_t one = 1;
    if (::write(m_wake.get(), &one, sizeof(one)) < 0)
        std::fprintf(stderr, "patchvisor: wake jail supervisor: %s\n", std::strerror(errno));
    std::unique_lock lock(m_mutex);
    m_changed.wait(lock, [&] { return m_outcome.has_value(); });
    return *m_outcome;
}

}  // namespace pv::sandbox
