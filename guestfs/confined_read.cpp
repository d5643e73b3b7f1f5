#include "guestfs/confined_read.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "common/fd.hpp"
#include "guestfs/ext/ext_filesystem.hpp"
#include "guestfs/reply.hpp"
#include "vmm/confine/seccomp_context.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define PV_GUESTFS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PV_GUESTFS_SANITIZED 1
#endif
#endif

namespace pv::guestfs {

namespace {

using vmm::confine::argument_is;
using vmm::confine::argument_lacks;
using vmm::confine::SeccompContext;

// Room the child may allocate beyond the parent's address space, which it
// inherits: a status file at its limit, its copy and the package list fit
// many times over; a superblock claiming millions of block groups does not.
constexpr uint64_t kExtraAddressSpace = 2ull << 30;

// What the child may do once it has its filter. `strace -f` of the guestfs
// tests (raw, qcow2 with and without compressed clusters, an overlay over a
// raw backing file, GPT, the samples, the error cases) saw only read, lseek,
// pread64, preadv (raw images), mmap, munmap, brk and write; the rest keep
// rarer paths of malloc, glibc's qsort and abort() from ending as a SIGSYS.
Result<void> load_filter(int out) {
    auto filter = PV_TRY(SeccompContext::create());
    for (const char* syscall : {"read", "pread64", "preadv", "lseek"})
        PV_TRY(filter.allow(syscall));
    // The heap, never executable.
    PV_TRY(filter.allow_if("mmap", {argument_lacks(2, PROT_EXEC)}));
    PV_TRY(filter.allow_if("mprotect", {argument_lacks(2, PROT_EXEC)}));
    for (const char* syscall : {"brk", "munmap", "mremap", "madvise", "futex"})
        PV_TRY(filter.allow(syscall));
    PV_TRY(filter.allow_if("write", {argument_is(0, static_cast<uint32_t>(out))}));
    // glibc's qsort (librpm sorts a header's index with it) asks sysinfo how
    // much memory there is before it sorts a large array.
    PV_TRY(filter.allow("sysinfo"));
    // The end, and abort()'s way there.
    for (const char* syscall :
         {"exit_group", "exit", "rt_sigprocmask", "rt_sigreturn", "getpid", "gettid", "tgkill"})
        PV_TRY(filter.allow(syscall));
    return filter.load();
}

Result<void> confine_child(int out, uint64_t address_space) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        return fail(errno_error("set the reader's parent-death signal"));
    const rlimit no_core{0, 0};
    if (::setrlimit(RLIMIT_CORE, &no_core) != 0)
        return fail(errno_error("limit the reader's core dumps"));
        // The sanitizers reserve terabytes of shadow memory up front.
#ifndef PV_GUESTFS_SANITIZED
    const rlimit memory{address_space, address_space};
    if (::setrlimit(RLIMIT_AS, &memory) != 0)
        return fail(errno_error("limit the reader's address space"));
#else
    (void)address_space;
#endif
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail(errno_error("set no_new_privs for the reader"));
    return load_filter(out);
}

[[noreturn]] void run_child(img::BlockDevice& disk, DatabaseKind kind, int out,
                            uint64_t address_space) {
    auto confined = confine_child(out, address_space);
    const std::string reply =
        detail::encode_reply(confined ? read_package_database(disk, kind)
                                      : Result<PackageDatabase>(fail(confined.error())));
    size_t written = 0;
    while (written < reply.size()) {
        const ssize_t n = ::write(out, reply.data() + written, reply.size() - written);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            ::_exit(1);
        written += static_cast<size_t>(n);
    }
    ::_exit(0);
}

// The parent's address space now, which the child starts with.
Result<uint64_t> address_space_limit() {
    Fd statm = PV_TRY(Fd::open("/proc/self/statm", O_RDONLY));
    char text[128] = {};
    const ssize_t got = ::read(statm.get(), text, sizeof text - 1);
    if (got <= 0)
        return fail(errno_error("read /proc/self/statm"));
    const uint64_t pages = std::strtoull(text, nullptr, 10);
    return pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) + kExtraAddressSpace;
}

// The forked reader, killed and reaped however the read ends.
class Reader {
  public:
    explicit Reader(pid_t pid) : m_pid(pid) {}
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    ~Reader() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            (void)wait();
        }
    }

    // How it ended, once it has; killed at DEADLINE.
    Result<int> wait(std::chrono::steady_clock::time_point deadline) {
        // The pidfd becomes readable when the process ends (pidfd_open(2)).
        Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, m_pid, 0)));
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd ended{pidfd.get(), POLLIN, 0};
        if (!pidfd.valid() ||
            ::poll(&ended, 1, static_cast<int>(std::max<int64_t>(left.count(), 0))) != 1)
            ::kill(m_pid, SIGKILL);
        return wait();
    }

  private:
    Result<int> wait() {
        int status = 0;
        while (::waitpid(m_pid, &status, 0) < 0)
            if (errno != EINTR)
                return fail(errno_error("wait for the reader process"));
        m_pid = -1;
        return status;
    }

    pid_t m_pid;
};

std::string describe_end(int status) {
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    const int signal = WTERMSIG(status);
    std::string text = "was killed by signal " + std::to_string(signal);
    if (signal == SIGSYS)
        text += " (SIGSYS: a system call its seccomp filter does not allow)";
    return text;
}

// Everything the child writes, until it closes the pipe or DEADLINE.
Result<std::string> collect(int in, std::chrono::steady_clock::time_point deadline,
                            std::chrono::milliseconds timeout) {
    std::string reply;
    char buffer[65536];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd wanted{in, POLLIN, 0};
        const int ready =
            left.count() <= 0 ? 0 : ::poll(&wanted, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0)
            return fail(errno_error("wait for the reader process"));
        if (ready == 0)
            return fail(make_error("read the package database",
                                   fmt::format("the reader process timed out after {:g} s",
                                               std::chrono::duration<double>(timeout).count())));
        const ssize_t got = ::read(in, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return fail(errno_error("read the reader process's answer"));
        if (got == 0)
            return reply;
        if (reply.size() + static_cast<size_t>(got) > detail::kMaxReplyBytes)
            return fail(
                make_error("read the reader process's answer",
                           "it is over " + std::to_string(detail::kMaxReplyBytes) + " bytes"));
        reply.append(buffer, static_cast<size_t>(got));
    }
}

}  // namespace

Result<PackageDatabase> read_package_database_confined(img::BlockDevice& disk, DatabaseKind kind,
                                                       std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    ExtFilesystem::load_error_messages();
    const uint64_t address_space = PV_TRY(address_space_limit());
    int ends[2] = {-1, -1};
    if (::pipe2(ends, O_CLOEXEC) != 0)
        return fail(errno_error("create the reader's pipe"));
    Fd in(ends[0]);
    Fd out(ends[1]);
    const pid_t pid = ::fork();
    if (pid < 0)
        return fail(errno_error("fork the reader process"));
    if (pid == 0) {
        in.reset();
        run_child(disk, kind, out.get(), address_space);
    }
    Reader reader(pid);
    out.reset();
    const std::string reply = PV_TRY(collect(in.get(), deadline, timeout));
    const int status = PV_TRY(reader.wait(deadline));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return fail(make_error("read the package database on " + disk.name(),
                               "the reader process " + describe_end(status)));
    return detail::decode_reply(reply, disk.name());
}

}  // namespace pv::guestfs
