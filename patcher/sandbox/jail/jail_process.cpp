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
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "patcher/sandbox/jail/confinement.hpp"
#include "patcher/sandbox/jail/jail_root.hpp"

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
    const RootPlan* root = nullptr;
    const Confinement* confinement = nullptr;
};

// Which setup step failed, reported through the pipe with errno.
enum class Step : int32_t {
    DeathSignal,
    PrivateMounts,
    Root,
    Hostname,
    Loopback,
    Stdio,
    Session,
    Confine,
    Exec
};
constexpr const char* kStepNames[] = {"set parent-death signal",
                                      "make mounts private",
                                      "build root",
                                      "set hostname",
                                      "bring up loopback",
                                      "redirect stdio",
                                      "start session",
                                      "confine",
                                      "exec"};

struct ChildFailure {
    int32_t step = 0;
    int32_t error = 0;
    int32_t root_step = -1;  // index into RootPlan::steps for Step::Root
};

[[noreturn]] void child_fail(const ChildPlan& plan, Step step, int root_step = -1) {
    const ChildFailure failure{static_cast<int32_t>(step), errno, root_step};
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

// Loopback and the root need CAP_NET_ADMIN, CAP_MKNOD and CAP_SYS_ADMIN,
// so confinement comes after them, last before exec.
[[noreturn]] void run_child(const ChildPlan& plan) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        child_fail(plan, Step::DeathSignal);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        child_fail(plan, Step::PrivateMounts);
    int failed_root_step = -1;
    if (build_root(*plan.root, failed_root_step) != 0)
        child_fail(plan, Step::Root, failed_root_step);
    if (::sethostname(plan.hostname, std::strlen(plan.hostname)) != 0)
        child_fail(plan, Step::Hostname);
    if (bring_up_loopback() != 0)
        child_fail(plan, Step::Loopback);
    if (redirect_stdio(plan) != 0)
        child_fail(plan, Step::Stdio);
    if (::setsid() < 0)
        child_fail(plan, Step::Session);
    if (apply_confinement(*plan.confinement) != 0)
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
Result<void> read_child_failure(int read_fd, const std::string& program, const RootPlan& root) {
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
    std::string what = kStepNames[step];
    if (step == static_cast<int32_t>(Step::Root) && failure.root_step >= 0 &&
        static_cast<size_t>(failure.root_step) < root.steps.size())
        what += " (" + root.steps[static_cast<size_t>(failure.root_step)].description + ")";
    return fail(errno_error("jail: " + what + " for " + program, failure.error));
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
    RootInputs root_inputs;
    root_inputs.disk_nodes = spec.disk_nodes;
    {
        const Fd readable =
            PV_TRY(Fd::open("/proc/self/fd/" + std::to_string(program.get()), O_RDONLY));
        root_inputs.dynamic_program = PV_TRY(is_dynamic_program(readable.get(), spec.program));
    }
    root_inputs.socket_path = spec.socket_path;
    // The new root is built on /tmp, which the child's own mount namespace
    // hides from the host.
    const RootPlan root = PV_TRY(plan_root(root_inputs, "/tmp"));
    const Confinement confinement = PV_TRY(prepare_confinement());
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
                         spec.hostname.c_str(), argv.data(), envp.data(), &root,
                         &confinement};
    int pidfd = -1;
    const pid_t pid = PV_TRY(clone_into_namespaces(plan, pidfd));
    JailProcess process(pid, Fd(pidfd));
    status_write.reset();
    PV_TRY(read_child_failure(status_read.get(), spec.program, root));
    return process;
}

}  // namespace pv::sandbox
