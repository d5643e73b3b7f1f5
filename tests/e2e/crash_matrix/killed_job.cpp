#include "tests/e2e/crash_matrix/killed_job.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pv::test {

namespace {

// "  apply       1.23 s  ..." (ConsoleObserver::phase_finished) → "apply".
std::string phase_of(const std::string& line) {
    if (!line.starts_with("  ") || line.size() < 3 || line[2] == ' ')
        return "";
    const auto end = line.find(' ', 2);
    if (end == std::string::npos || line.find(" s  ", end) == std::string::npos)
        return "";
    return line.substr(2, end - 2);
}

int spawn(const std::vector<std::string>& arguments, int stderr_fd) {
    std::vector<char*> argv;
    for (const auto& argument : arguments)
        argv.push_back(const_cast<char*>(argument.c_str()));
    argv.push_back(nullptr);
    const int pid = ::fork();
    if (pid == 0) {
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, STDOUT_FILENO);
        ::dup2(stderr_fd, STDERR_FILENO);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    return pid;
}

// waitpid with a deadline; false if PID is still there after TIMEOUT.
bool wait_for(int pid, int& status, std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        ::usleep(20'000);
    }
    return true;
}

}  // namespace

KilledJob run_and_kill(const std::vector<std::string>& arguments, const KillPlan& plan,
                       const std::function<void()>& free_stuck) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
        return {};
    const auto started = std::chrono::steady_clock::now();
    KilledJob job;
    job.pid = spawn(arguments, pipe_fds[1]);
    ::close(pipe_fds[1]);
    const auto kill_now = [&job] {
        ::kill(job.pid, SIGKILL);
        job.killed = true;
    };
    if (plan.after_phase == "start")
        kill_now();
    std::string pending;
    bool open = true;
    while (open && !job.killed) {
        int timeout = -1;
        if (plan.after_phase.empty()) {
            const auto left = plan.delay - (std::chrono::steady_clock::now() - started);
            timeout = static_cast<int>(
                std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
        }
        pollfd poll_fd{pipe_fds[0], POLLIN, 0};
        if (::poll(&poll_fd, 1, timeout) == 0) {
            kill_now();
            break;
        }
        char buffer[4096];
        const auto got = ::read(pipe_fds[0], buffer, sizeof buffer);
        if (got <= 0) {
            open = false;
            break;
        }
        pending.append(buffer, static_cast<size_t>(got));
        job.stderr_text.append(buffer, static_cast<size_t>(got));
        for (auto end = pending.find('\n'); end != std::string::npos; end = pending.find('\n')) {
            const auto phase = phase_of(pending.substr(0, end));
            pending.erase(0, end + 1);
            if (phase.empty())
                continue;
            job.phases.push_back(phase);
            if (phase == plan.after_phase) {
                kill_now();
                break;
            }
        }
    }
    ::close(pipe_fds[0]);
    int status = 0;
    if (!wait_for(job.pid, status, std::chrono::seconds(job.killed ? 5 : 600))) {
        job.stuck_in_exit = true;
        free_stuck();
        if (!wait_for(job.pid, status, std::chrono::seconds(30)))
            return job;
    }
    job.reaped = true;
    job.elapsed = std::chrono::steady_clock::now() - started;
    if (WIFEXITED(status)) {
        // It got there first: the kill (if sent) hit a process already done.
        job.killed = false;
        job.exit_code = WEXITSTATUS(status);
    }
    return job;
}

}  // namespace pv::test
