#include "patcher/sandbox/microvm/vmm_process.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

extern char** environ;

namespace pv::sandbox {

namespace {

// Everything the child needs, prepared before clone3: between clone3 and
// exec the child of a threaded process may only make async-signal-safe
// calls, so it touches no allocator and no lock.
struct ChildPlan {
    int program_fd;
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    int status_fd;  // the child writes errno here if it cannot exec
    pid_t parent;
    char* const* argv;
};

[[noreturn]] void child_fail(const ChildPlan& plan) {
    const int error = errno;
    (void)!::write(plan.status_fd, &error, sizeof(error));
    ::_exit(127);
}

[[noreturn]] void run_child(const ChildPlan& plan) {
    // Dies with the thread that started it; if that already happened
    // between clone3 and here, the signal will never come: exit now.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || ::getppid() != plan.parent)
        child_fail(plan);
    // The job's threads may block signals; the VMM needs its SIGRTMIN kicks.
    sigset_t none;
    sigemptyset(&none);
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0)
        child_fail(plan);
    if (::dup2(plan.stdin_fd, 0) < 0 || ::dup2(plan.stdout_fd, 1) < 0 ||
        ::dup2(plan.stderr_fd, 2) < 0)
        child_fail(plan);
    // Nothing else of the job's (the overlay, other sandboxes' sockets)
    // reaches the VMM, even a descriptor someone forgot to mark CLOEXEC.
    if (::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        child_fail(plan);
    ::syscall(SYS_execveat, plan.program_fd, "", plan.argv, environ, AT_EMPTY_PATH);
    child_fail(plan);
}

// Reads the child's report: nothing (EOF at exec) means it runs.
Result<void> read_child_failure(int read_fd, const std::string& program) {
    int error = 0;
    ssize_t got;
    do {
        got = ::read(read_fd, &error, sizeof(error));
    } while (got < 0 && errno == EINTR);
    if (got == 0)
        return {};
    if (got != static_cast<ssize_t>(sizeof(error)))
        return fail(make_error("start " + program, "lost the child's status"));
    return fail(errno_error("start " + program, error));
}

}  // namespace

Result<VmmProcess> VmmProcess::spawn(const VmmLaunch& launch) {
    Fd program = PV_TRY(Fd::open(launch.program, O_PATH));
    Fd null = PV_TRY(Fd::open("/dev/null", O_RDONLY));
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
        return fail(errno_error("pipe to start " + launch.program));
    Fd status_read(pipe_fds[0]);
    Fd status_write(pipe_fds[1]);
    std::vector<std::string> arguments = launch.arguments;
    std::vector<char*> argv;
    for (std::string& argument : arguments)
        argv.push_back(argument.data());
    argv.push_back(nullptr);
    const ChildPlan plan{program.get(),      null.get(), launch.stdout_fd, launch.stderr_fd,
                         status_write.get(), ::getpid(), argv.data()};

    clone_args clone{};
    int pidfd = -1;
    clone.flags = CLONE_PIDFD;
    clone.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    clone.exit_signal = SIGCHLD;
    const long pid = ::syscall(SYS_clone3, &clone, sizeof(clone));
    if (pid < 0)
        return fail(errno_error("clone3 for " + launch.program));
    if (pid == 0)
        run_child(plan);
    VmmProcess process(static_cast<pid_t>(pid), Fd(pidfd));
    status_write.reset();
    PV_TRY(read_child_failure(status_read.get(), launch.program));
    return process;
}

}  // namespace pv::sandbox
