// Each thread role's seccomp filter (vmm/confine/thread_filters.hpp) in a
// forked child: what the role needs still works, a forbidden syscall kills
// the whole process with SIGSYS, and argument checks tell an allowed ioctl
// or mapping from a forbidden one.

#include <asm/unistd.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/futex.h>
#include <linux/kvm.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "child.hpp"
#include "vmm/confine/thread_filters.hpp"

namespace pv::vmm::confine::test {
namespace {

class RoleFilter : public ::testing::TestWithParam<ThreadRole> {
  protected:
    // Installs the role's filter in a child, then runs CALL there; the
    // child's exit code is CALL's (0: it behaved as expected).
    template <class Call>
    int confined(Call call) {
        ThreadRole role = GetParam();
        return in_child([role, call] {
            if (!install_thread_filter(role))
                return 100;
            return call();
        });
    }
};

// A syscall that returns is a failure of the test: the filter should have
// killed the child first.
constexpr int kSurvived = 1;

TEST_P(RoleFilter, AllowsWhatEveryThreadNeeds) {
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    int status = confined([&] {
        if (write(pipe_fds[1], "x", 1) != 1)
            return 1;
        void* page =
            mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED || munmap(page, 4096) != 0)
            return 2;
        int word = 0;
        if (syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0) < 0)
            return 3;
        timespec now{};
        if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now) != 0)
            return 4;
        if (syscall(SYS_tgkill, getpid(), gettid(), 0) != 0)
            return 5;
        return 0;  // _exit: exit_group
    });
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST_P(RoleFilter, OpeningAFileKills) {
    int status = confined([] {
        (void)syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY);
        return kSurvived;
    });
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, StartingAThreadOrProcessKills) {
    int status = confined([] {
        pid_t pid = fork();  // clone
        if (pid == 0)
            _exit(0);
        return kSurvived;
    });
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, ExecKills) {
    int status = confined([] {
        char* const arguments[] = {const_cast<char*>("/bin/true"), nullptr};
        execv("/bin/true", arguments);
        return kSurvived;
    });
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, ExecutableMemoryKills) {
    int status = confined([] {
        (void)mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return kSurvived;
    });
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
    void* page = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(page, MAP_FAILED);
    status = confined([page] {
        (void)mprotect(page, 4096, PROT_READ | PROT_EXEC);
        return kSurvived;
    });
    munmap(page, 4096);
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, AnotherSyscallAbiKills) {
    // x32's numbering (bit 30) would read the x86_64 rules wrongly.
    int status = confined([] {
        (void)syscall(__X32_SYSCALL_BIT | __NR_getpid);
        return kSurvived;
    });
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, NetworkSocketKills) {
    int status = confined([] {
        (void)socket(AF_INET, SOCK_STREAM, 0);
        return kSurvived;
    });
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, UnixSocketsOnlyInTheEventLoop) {
    // The vsock bridge lives on the event loop; no other role makes sockets.
    int status = confined([] {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int on = 1;
        if (fd < 0 || ioctl(fd, FIONBIO, &on) != 0)
            return 2;
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        // An abstract name nobody listens on: refused, not killed.
        std::memcpy(address.sun_path, "\0pv-confine-test-nobody", 24);
        if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != -1 ||
            errno != ECONNREFUSED)
            return 3;
        return close(fd) == 0 ? 0 : 4;
    });
    if (GetParam() == ThreadRole::EventLoop)
        EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
    else
        EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, UnlinkOnlyWhereTearDownRemovesTheVsockSocket) {
    int status = confined(
        [] { return unlink("/nonexistent/pv-confine-test") == -1 && errno == ENOENT ? 0 : 2; });
    if (GetParam() == ThreadRole::Main)
        EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
    else
        EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, KvmSetupIoctlKills) {
    // Setting registers or creating vCPUs is setup's work, never a guest's.
    for (unsigned long request : std::initializer_list<unsigned long>{KVM_SET_REGS, KVM_CREATE_VCPU,
                                                                      KVM_SET_USER_MEMORY_REGION}) {
        int status = confined([request] {
            (void)ioctl(-1, request, 0);
            return kSurvived;
        });
        EXPECT_TRUE(killed_by_sigsys(status))
            << std::hex << request << ": " << describe_status(status);
    }
}

TEST_P(RoleFilter, KvmRunOnlyWhereAVcpuRuns) {
    // On a bad descriptor an allowed ioctl fails with EBADF; a forbidden one
    // kills. KVM_GET_REGS has bit 31 set: the 32-bit compare must match it.
    int status = confined([] {
        for (unsigned long request : std::initializer_list<unsigned long>{
                 KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_IRQ_LINE}) {
            if (ioctl(-1, request, 0) != -1 || errno != EBADF)
                return 2;
        }
        return 0;
    });
    if (GetParam() == ThreadRole::Vcpu || GetParam() == ThreadRole::Main)
        EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
    else
        EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, FileDataOnlyWhereTheDiskIsServedOrFlushed) {
    // The disk thread serves virtio-blk; the main thread flushes the disk
    // once the VM has ended. vCPUs and the event loop never touch the file.
    int status = confined([] {
        char byte = 0;
        if (pread(-1, &byte, 1, 0) != -1 || errno != EBADF)
            return 2;
        if (pwrite(-1, &byte, 1, 0) != -1 || errno != EBADF)
            return 3;
        if (fdatasync(-1) != -1 || errno != EBADF)
            return 4;
        return 0;
    });
    if (GetParam() == ThreadRole::DiskIo || GetParam() == ThreadRole::Main)
        EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
    else
        EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST_P(RoleFilter, PostingToABlockedEventLoopWakesIt) {
    // Every role hands work to the event loop: a vCPU when the guest
    // resets or starts virtio-vsock (the vsock device posts to its loop),
    // the main thread, the loops themselves. Asio wakes a loop that is
    // blocked in epoll_wait by re-arming its interrupter (EPOLL_CTL_MOD).
    const ThreadRole role = GetParam();
    int status = in_child([role] {
        boost::asio::io_context events;
        // A pending timer makes the loop wait in its reactor (epoll_wait),
        // not on a condition variable, as the VMM's loop does.
        boost::asio::steady_timer timer(events, std::chrono::hours(1));
        timer.async_wait([](const boost::system::error_code&) {});
        bool ran = false;
        std::thread loop([&] { events.run(); });  // started before the filter forbids clone
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // blocked in epoll_wait
        if (!install_thread_filter(role))
            return 100;
        boost::asio::post(events, [&] {
            ran = true;
            events.stop();
        });
        loop.join();
        // Now, before the loop's destructor closes descriptors (a vCPU never does).
        _exit(ran ? 0 : 2);
        return 0;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
    // Re-arming is all a vCPU may do with epoll: registering a descriptor is the loop's.
    if (role == ThreadRole::Vcpu) {
        status = confined([] {
            epoll_event event{};
            (void)epoll_ctl(-1, EPOLL_CTL_ADD, -1, &event);
            return kSurvived;
        });
        EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
    }
}

INSTANTIATE_TEST_SUITE_P(Roles, RoleFilter,
                         ::testing::Values(ThreadRole::Vcpu, ThreadRole::EventLoop,
                                           ThreadRole::DiskIo, ThreadRole::Main),
                         [](const auto& info) {
                             std::string name(to_string(info.param));
                             std::erase(name, '-');
                             return name;
                         });

TEST(ProcessFilter, ReachesThreadsStartedBeforeIt) {
    // Like imgfmt's qcow2 write-behind workers, started during setup: after
    // the process filter (TSYNC) their forbidden syscall kills the process.
    int status = in_child([] {
        std::mutex mutex;
        std::condition_variable changed;
        bool confined = false;
        std::thread worker([&] {
            std::unique_lock lock(mutex);
            changed.wait(lock, [&] { return confined; });
            (void)syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY);
        });
        bool installed = install_process_filter().has_value();
        {
            std::lock_guard lock(mutex);
            confined = true;
        }
        changed.notify_all();
        worker.join();
        return installed ? kSurvived : 2;
    });
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST(ProcessFilter, StartsThreadsButNoProcess) {
    int status = in_child([] {
        if (!install_process_filter())
            return 2;
        bool ran = false;
        std::thread([&ran] {
            pthread_setname_np(pthread_self(), "pv-test");
            ran = install_thread_filter(ThreadRole::Vcpu).has_value();
        }).join();
        if (!ran)
            return 3;
        (void)fork();
        return kSurvived;
    });
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
}

TEST(ProcessFilter, RefusedOnceARoleFilterIsInstalled) {
    // TSYNC cannot move a thread off a sibling filter: step 1 comes first.
    int status = in_child([] {
        std::mutex mutex;
        std::condition_variable never;
        std::thread vcpu([&] {
            if (!install_thread_filter(ThreadRole::Vcpu))
                return;
            std::unique_lock lock(mutex);
            never.wait_for(lock, std::chrono::milliseconds(300));
        });
        usleep(100 * 1000);
        bool installed = install_process_filter().has_value();
        vcpu.join();
        return installed ? 1 : 0;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST(ThreadFilter, StaysOnTheThreadThatInstalledIt) {
    // Filters are per thread: a vCPU thread's list must not reach the main
    // thread, which still has setup-time work (here: opening a file).
    int status = in_child([] {
        bool installed = false;
        std::thread vcpu(
            [&installed] { installed = install_thread_filter(ThreadRole::Vcpu).has_value(); });
        vcpu.join();
        if (!installed)
            return 2;
        int fd = open("/proc/self/status", O_RDONLY);
        return fd >= 0 ? 0 : 3;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST(ThreadFilter, EventLoopMakesNoKvmCallsButPollsAndReads) {
    int status = in_child([] {
        int pipe_fds[2];
        if (pipe(pipe_fds) != 0 || write(pipe_fds[1], "x", 1) != 1)
            return 1;
        if (!install_thread_filter(ThreadRole::EventLoop))
            return 2;
        epoll_event event{};
        if (epoll_wait(-1, &event, 1, 0) != -1 || errno != EBADF)
            return 3;
        char byte = 0;
        if (read(pipe_fds[0], &byte, 1) != 1 || byte != 'x')
            return 4;
        return close(pipe_fds[0]) == 0 ? 0 : 5;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

}  // namespace
}  // namespace pv::vmm::confine::test
