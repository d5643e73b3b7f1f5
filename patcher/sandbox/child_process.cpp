#include "patcher/sandbox/child_process.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <utility>

namespace pv::sandbox {

namespace {

ChildEnd end_from(const siginfo_t& info) {
    ChildEnd end;
    end.exited = info.si_code == CLD_EXITED;
    (end.exited ? end.exit_status : end.signal) = info.si_status;
    return end;
}

}  // namespace

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)),
      m_pidfd(std::move(other.m_pidfd)),
      m_reaped(std::exchange(other.m_reaped, true)),
      m_name(std::move(other.m_name)) {}

ChildProcess::~ChildProcess() {
    if (m_reaped || !m_pidfd.valid())
        return;
    (void)kill();
    if (auto reaped = reap(true); !reaped)
        std::fprintf(stderr, "patchvisor: %s\n", reaped.error().message().c_str());
}

Result<void> ChildProcess::kill() const {
    if (m_reaped)
        return {};
    if (::syscall(SYS_pidfd_send_signal, m_pidfd.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
        return fail(errno_error("kill " + m_name + " (pid " + std::to_string(m_pid) + ")"));
    return {};
}

std::optional<ChildEnd> ChildProcess::peek() const {
    if (m_reaped || !m_pidfd.valid())
        return std::nullopt;
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(m_pidfd.get()), &info, WEXITED | WNOHANG | WNOWAIT) !=
            0 ||
        info.si_pid == 0)
        return std::nullopt;
    return end_from(info);
}

Result<std::optional<ChildEnd>> ChildProcess::reap(bool block) {
    if (m_reaped)
        return fail(make_error("reap " + m_name, "already reaped"));
    siginfo_t info{};
    int result;
    do {
        result = ::waitid(P_PIDFD, static_cast<id_t>(m_pidfd.get()), &info,
                          WEXITED | (block ? 0 : WNOHANG));
    } while (result != 0 && errno == EINTR);
    if (result != 0)
        return fail(errno_error("wait for " + m_name + " (pid " + std::to_string(m_pid) + ")"));
    if (info.si_pid == 0)
        return std::optional<ChildEnd>();
    m_reaped = true;
    return std::optional<ChildEnd>(end_from(info));
}

}  // namespace pv::sandbox
