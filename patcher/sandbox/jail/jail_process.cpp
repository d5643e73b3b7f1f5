#include "patcher/sandbox/jail/jail_process.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

namespace pv::sandbox {

namespace {

// Everything the child needs, prepared before clone3: between clone3 and
// exec in a multi-threaded process only async-signal-safe calls are
// allowed, so no allocation happens there.
struct ChildPlan {
    int program_fd = -1;
    int null_fd = -1;
    int log_fd = -1;
    int error_fd = -1;  // write end of the exec-status pipe
    const char* hostname = nullptr;
    char* const* argv = nullptr;
    char* const* envp = nullptr;
};

// Which setup step failed, reported through the pipe with errno.
enum class Step : int32_t {
    DeathSignal,
    PrivateMounts,
    Proc,
    Tmp,
    Hostname,
    Loopback,
    Stdio,
    Session,
    Confine,
    Exec
};
constexpr const char* kStepNames[] = {"set parent-death signal",
                                      "make mounts private",
                                      "mount /proc",
                                      "mount private /tmp",
                                      "set hostname",
                                      "bring up loopback",
                                      "redirect stdio",
                                      "start session",
                                      "confine",
                                      "exec"};

struct ChildFailure {
    int32_t step = 0;
    int32_t error = 0;
};

[[noreturn]] void child_fail(const ChildPlan& plan, Step step) {
    const ChildFailure failure{static_cast<int32_t>(step), errno};
    (void)!::write(plan.error_fd, &failure, sizeof(failure));
    ::_exit(127);
}

int bring_up_loopback() {
    const int socket_fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (socket_fd < 0)
        return -1;
    ifreq request{};
    std::memcpy(request.ifr_name, "lo", 3);
    int result = ::ioctl(socket_fd, SIOCGIFFLAGS, &request);
    if (result == 0) {
        request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
        result = ::ioctl(socket_fd, SIOCSIFFLAGS, &request);
    }
    ::close(socket_fd);
    return result;
}

int redirect_stdio(const ChildPlan& plan) {
    if (::dup2(plan.null_fd, 0) < 0 || ::dup2(plan.log_fd, 1) < 0 || ::dup2(plan.log_fd, 2) < 0)
        return -1;
    // Nothing of the host process but stdio reaches the agent; the pipe and
    // the program descriptor stay usable until exec.
    return static_cast<int>(::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC));
}

// The place for seccomp filters and capability drops (a later issue).
int confine(const ChildPlan&) {
    return 0;
}

[[noreturn]] void run_child(const ChildPlan& plan) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        child_fail(plan, Step::DeathSignal);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        child_fail(plan, Step::PrivateMounts);
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
        child_fail(plan, Step::Proc);
    if (::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
        child_fail(plan, Step::Tmp);
    if (::sethostname(plan.hostname, std::strlen(plan.hostname)) != 0)
        child_fail(plan, Step::Hostname);
    if (bring_up_loopback() != 0)
        child_fail(plan, Step::Loopback);
    if (redirect_stdio(plan) != 0)
        child_fail(plan, Step::Stdio);
    if (::setsid() < 0)
        child_fail(plan, Step::Session);
    if (confine(plan) != 0)
        child_fail(plan, Step::Confine);
    ::syscall(SYS_execveat, plan.program_fd, "", plan.argv, plan.envp, AT_EMPTY_PATH);
    child_fail(plan, Step::Exec);
}

Result<pid_t> clone_into_namespaces(const ChildPlan& plan, int& pidfd) {
    clone_args arguments{};
    arguments.flags =
        CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_PIDFD;
    arguments.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    arguments.exit_signal = SIGCHLD;
    const long pid = ::syscall(SYS_clone3, &arguments, sizeof(arguments));
    if (pid < 0)
        return fail(errno_error("clone3 into new namespaces"));
    if (pid == 0)
        run_child(plan);
    return static_cast<pid_t>(pid);
}

// Reads the child's report: nothing (EOF at exec) means it runs.
Result<void> read_child_failure(int read_fd, const std::string& program) {
    ChildFailure failure;
    ssize_t got;
    do {
        got = ::read(read_fd, &failure, sizeof(failure));
    } while (got < 0 && errno == EINTR);
    if (got == 0)
        return {};
    if (got != static_cast<ssize_t>(sizeof(failure)))
        return fail(make_error("start jail for " + program, "lost the child's status"));
    const int32_t step = failure.step >= 0 && failure.step <= static_cast<int32_t>(Step::Exec)
                             ? failure.step
                             : static_cast<int32_t>(Step::Exec);
    return fail(
        errno_error(std::string("jail: ") + kStepNames[step] + " for " + program, failure.error));
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (std::string& text : strings)
        pointers.push_back(text.data());
    pointers.push_back(nullptr);
    return pointers;
}

}  // namespace

Result<JailProcess> JailProcess::spawn(const JailSpec& spec) {
    Fd program = PV_TRY(Fd::open(spec.program, O_PATH));
    Fd null = PV_TRY(Fd::open("/dev/null", O_RDONLY));
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
        return fail(errno_error("pipe for jail start"));
    Fd status_read(pipe_fds[0]);
    Fd status_write(pipe_fds[1]);
    std::vector<std::string> arguments = spec.arguments;
    std::vector<std::string> environment = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
        "LC_ALL=C"};
    const std::vector<char*> argv = pointers_to(arguments);
    const std::vector<char*> envp = pointers_to(environment);
    const ChildPlan plan{program.get(),         null.get(),  spec.log_fd, status_write.get(),
                         spec.hostname.c_str(), argv.data(), envp.data()};
    int pidfd = -1;
    const pid_t pid = PV_TRY(clone_into_namespaces(plan, pidfd));
    JailProcess process(pid, Fd(pidfd));
    status_write.reset();
    PV_TRY(read_child_failure(status_read.get(), spec.program));
    return process;
}

JailProcess::JailProcess(JailProcess&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)),
      m_pidfd(std::move(other.m_pidfd)),
      m_reaped(std::exchange(other.m_reaped, true)) {}

JailProcess::~JailProcess() {
    if (m_reaped || !m_pidfd.valid())
        return;
    (void)kill();
    if (auto reaped = reap(true); !reaped)
        std::fprintf(stderr, "patchvisor: %s\n", reaped.error().message().c_str());
}

Result<void> JailProcess::kill() const {
    if (m_reaped)
        return {};
    if (::syscall(SYS_pidfd_send_signal, m_pidfd.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH)
        return fail(errno_error("kill jail PID 1 (pid " + std::to_string(m_pid) + ")"));
    return {};
}

Result<std::optional<ProcessEnd>> JailProcess::reap(bool block) {
    if (m_reaped)
        return fail(make_error("reap jail process", "already reaped"));
    siginfo_t info{};
    int result;
    do {
        result = ::waitid(P_PIDFD, static_cast<id_t>(m_pidfd.get()), &info,
                          WEXITED | (block ? 0 : WNOHANG));
    } while (result != 0 && errno == EINTR);
    if (result != 0)
        return fail(errno_error("wait for jail process " + std::to_string(m_pid)));
    if (info.si_pid == 0)
        return std::optional<ProcessEnd>();
    m_reaped = true;
    ProcessEnd end;
    end.exited = info.si_code == CLD_EXITED;
    (end.exited ? end.exit_status : end.signal) = info.si_status;
    return std::optional<ProcessEnd>(end);
}

}  // namespace pv::sandbox
