#include "agent/process.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>

#include "common/fd.hpp"

namespace pv::agent {

namespace {

// A command that prints a line longer than this gets it split, so a hostile
// or broken tool cannot make the agent buffer without bound.
constexpr size_t kMaxLineLength = 64 * 1024;

// Mount points inside the guest must be real directories: a symlink there
// would redirect the mount to a path the guest chose.
Result<void> ensure_directory(const std::string& path) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) {
        if (errno != ENOENT)
            return fail(errno_error("stat " + path));
        if (mkdir(path.c_str(), 0755) != 0)
            return fail(errno_error("mkdir " + path));
        return {};
    }
    if (!S_ISDIR(st.st_mode))
        return fail(make_error("prepare chroot", path + " is not a directory"));
    return {};
}

// What the guest's tools must not have although the agent needs them: with
// CAP_SYS_ADMIN a maintainer script could mount a fresh proc with writable
// host knobs (in the jail), with CAP_SYS_CHROOT leave the chroot. Dropped
// from the bounding set (CAP_SETPCAP last, as dropping needs it), so no
// exec of a root or setuid program brings them back; the inheritable and
// ambient sets are empty in both sandboxes.
int drop_agent_capabilities() {
    for (const int capability : {CAP_SYS_ADMIN, CAP_SYS_CHROOT, CAP_SETPCAP}) {
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0)
            return -1;
    }
    return 0;
}

[[noreturn]] void exec_child(const std::string& root, const std::vector<std::string>& argv,
                             int out_fd, int err_fd) {
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0)
        dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    setsid();
    if (chroot(root.c_str()) != 0 || chdir("/") != 0) {
        perror("pv-agent: chroot");
        _exit(127);
    }
    if (drop_agent_capabilities() != 0) {
        perror("pv-agent: drop capabilities");
        _exit(127);
    }
    std::vector<char*> args;
    for (const auto& arg : argv)
        args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    char* env[] = {
        const_cast<char*>("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        const_cast<char*>("DEBIAN_FRONTEND=noninteractive"),
        const_cast<char*>("DEBCONF_NONINTERACTIVE_SEEN=true"),
        const_cast<char*>("LC_ALL=C"),
        const_cast<char*>("HOME=/root"),
        const_cast<char*>("TERM=dumb"),
        nullptr};
    for (const char* dir : {"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"}) {
        const std::string path = argv[0].find('/') == std::string::npos ? dir + argv[0] : argv[0];
        execve(path.c_str(), args.data(), env);
    }
    fprintf(stderr, "pv-agent: cannot run %s in the guest: %s\n", argv[0].c_str(), strerror(errno));
    _exit(127);
}

struct LineSplitter {
    LogStream stream;
    std::string pending;

    void add(const char* data, size_t size, const LineCallback& on_line) {
        pending.append(data, size);
        size_t start = 0;
        for (;;) {
            const auto newline = pending.find('\n', start);
            if (newline == std::string::npos)
                break;
            on_line(stream, std::string_view(pending).substr(start, newline - start));
            start = newline + 1;
        }
        pending.erase(0, start);
        if (pending.size() > kMaxLineLength) {
            on_line(stream, pending);
            pending.clear();
        }
    }

    void flush(const LineCallback& on_line) {
        if (!pending.empty())
            on_line(stream, pending);
        pending.clear();
    }
};

// Reads both pipes until both reach end of file.
void pump_output(Fd& out, Fd& err, const LineCallback& on_line) {
    std::array<LineSplitter, 2> splitters{LineSplitter{LogStream::Stdout, {}},
                                          LineSplitter{LogStream::Stderr, {}}};
    std::array<Fd*, 2> fds{&out, &err};
    char buffer[16384];
    while (out.valid() || err.valid()) {
        std::array<pollfd, 2> polls{};
        for (size_t i = 0; i < 2; ++i)
            polls[i] = {fds[i]->valid() ? fds[i]->get() : -1, POLLIN, 0};
        if (poll(polls.data(), polls.size(), -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (size_t i = 0; i < 2; ++i) {
            if (polls[i].revents == 0)
                continue;
            const ssize_t got = read(fds[i]->get(), buffer, sizeof buffer);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                splitters[i].flush(on_line);
                fds[i]->reset();
                continue;
            }
            splitters[i].add(buffer, static_cast<size_t>(got), on_line);
        }
    }
}

}  // namespace

// The guest's tools get a /dev of harmless character devices only: in the
// jail the sandbox's /dev is the host's, and nothing in a package install
// needs a disk, so a hostile maintainer script cannot reach one.
Result<void> ChrootMounts::populate_dev(const std::string& dev) {
    if (mount("pv-dev", dev.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m") != 0)
        return fail(errno_error("mount tmpfs on " + dev));
    m_targets.push_back(dev);
    for (const char* name : {"null", "zero", "full", "random", "urandom", "tty"}) {
        const std::string source = std::string("/dev/") + name;
        // A sandbox with a reduced /dev (a jail without a tty) still gets
        // what it has; only /dev/null is indispensable to package scripts.
        if (access(source.c_str(), F_OK) != 0 && std::strcmp(name, "null") != 0)
            continue;
        const std::string node = dev + "/" + name;
        const int fd = open(node.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0)
            return fail(errno_error("create " + node));
        close(fd);
        if (mount(source.c_str(), node.c_str(), nullptr, MS_BIND, nullptr) != 0)
            return fail(errno_error("bind " + source + " on " + node));
    }
    for (const auto& [name, target] : {std::pair{"fd", "/proc/self/fd"},
                                       {"stdin", "/proc/self/fd/0"},
                                       {"stdout", "/proc/self/fd/1"},
                                       {"stderr", "/proc/self/fd/2"}}) {
        if (symlink(target, (dev + "/" + name).c_str()) != 0)
            return fail(errno_error("create " + dev + "/" + name));
    }
    return {};
}

Result<void> ChrootMounts::bind_read_only(const std::string& source, const std::string& target) {
    if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        return fail(errno_error("bind " + source + " on " + target));
    m_targets.push_back(target);
    if (mount(nullptr, target.c_str(), nullptr,
              MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
        return fail(errno_error("make " + target + " read-only"));
    return {};
}

Result<ChrootMounts> ChrootMounts::create(const std::string& root) {
    ChrootMounts mounts;
    for (const char* directory : {"/proc", "/sys", "/dev"})
        PV_TRY(ensure_directory(root + directory));
    // A fresh proc shows the sandbox's own PID namespace.
    const std::string proc = root + "/proc";
    if (mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
        return fail(errno_error("mount proc on " + proc));
    mounts.m_targets.push_back(proc);
    // In the jail this proc is the host kernel's: /proc/sys holds its
    // settings and a write to /proc/sysrq-trigger reboots it. Root needs no
    // capability to write either, so they are made read-only.
    // (A kernel without CONFIG_MAGIC_SYSRQ has no trigger.)
    for (const char* knob : {"/sys", "/sysrq-trigger"}) {
        if (access((proc + knob).c_str(), F_OK) == 0)
            PV_TRY(mounts.bind_read_only(proc + knob, proc + knob));
    }
    // /sys is bound read-only: tools read it, none needs to change it.
    PV_TRY(mounts.bind_read_only("/sys", root + "/sys"));
    PV_TRY(mounts.populate_dev(root + "/dev"));
    return mounts;
}

ChrootMounts::~ChrootMounts() {
    for (auto it = m_targets.rbegin(); it != m_targets.rend(); ++it)
        umount2(it->c_str(), MNT_DETACH);
}

Result<int> run_in_chroot(const std::string& root, const std::vector<std::string>& argv,
                          const LineCallback& on_line) {
    if (argv.empty())
        return fail(make_error("run in the guest", "empty command"));
    auto mounts = PV_TRY(ChrootMounts::create(root));
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0)
        return fail(errno_error("pipe"));
    Fd out_read(out_pipe[0]), out_write(out_pipe[1]);
    if (pipe2(err_pipe, O_CLOEXEC) != 0)
        return fail(errno_error("pipe"));
    Fd err_read(err_pipe[0]), err_write(err_pipe[1]);
    const pid_t pid = fork();
    if (pid < 0)
        return fail(errno_error("fork for " + argv[0]));
    if (pid == 0)
        exec_child(root, argv, out_write.get(), err_write.get());
    out_write.reset();
    err_write.reset();
    pump_output(out_read, err_read, on_line);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return fail(errno_error("wait for " + argv[0]));
    }
    // Descendants the command left running (daemons a maintainer script
    // started despite policy-rc.d) would keep the guest filesystem busy.
    kill(-pid, SIGKILL);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

}  // namespace pv::agent
