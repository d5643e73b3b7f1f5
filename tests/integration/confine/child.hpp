#pragma once

// Runs a test body in a forked child, so that a seccomp filter, a limit or a
// uid drop stays there. The child reports with its exit code (0: every check
// held) or dies of a signal; the parent gets the raw wait status.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace pv::vmm::confine::test {

template <class Body>
int in_child(Body body) {
    pid_t pid = fork();
    if (pid == 0)
        _exit(body());
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return status;
}

inline std::string describe_status(int status) {
    if (status == -1)
        return "fork or wait failed";
    if (WIFEXITED(status))
        return "exited with " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        return std::string("killed by signal ") + strsignal(WTERMSIG(status));
    return "status " + std::to_string(status);
}

inline bool killed_by_sigsys(int status) {
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

inline bool exited_cleanly(int status) {
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace pv::vmm::confine::test
