// The process-wide half of confinement (vmm/confine/process_limits.hpp) in
// forked children: no_new_privs, the resource limits and the uid drop.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>

#include "child.hpp"
#include "tests/support/support.hpp"
#include "vmm/confine/policy.hpp"

namespace pv::vmm::confine::test {
namespace {

constexpr uid_t kNobody = 65534;

bool limit_is(int resource, rlim_t value) {
    rlimit limit{};
    return getrlimit(resource, &limit) == 0 && limit.rlim_cur == value && limit.rlim_max == value;
}

std::string status_field(const std::string& name) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind(name + ":", 0) == 0)
            return line.substr(name.size() + 1);
    }
    return "";
}

TEST(NoNewPrivs, IsSetAndInheritedByNewThreads) {
    int status = in_child([] {
        if (!set_no_new_privs())
            return 1;
        int in_thread = -1;
        std::thread([&in_thread] { in_thread = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); }).join();
        return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 && in_thread == 1 ? 0 : 2;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST(ResourceLimits, AreLoweredSoftAndHard) {
    int status = in_child([] {
        if (!apply_resource_limits({.open_files = 64, .file_size = 1 << 20}))
            return 1;
        if (!limit_is(RLIMIT_CORE, 0) || !limit_is(RLIMIT_NOFILE, 64) ||
            !limit_is(RLIMIT_FSIZE, 1 << 20) || !limit_is(RLIMIT_MEMLOCK, 0) ||
            !limit_is(RLIMIT_MSGQUEUE, 0))
            return 2;
        // A hard limit once lowered cannot be raised again by an
        // unprivileged process; never raised by us either.
        if (!apply_resource_limits({.open_files = 4096, .file_size = 1 << 20}) ||
            !limit_is(RLIMIT_NOFILE, 64))
            return 3;
        return 0;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST(ResourceLimits, AWriteBeyondTheFileSizeLimitFailsWithoutKillingTheProcess) {
    pv::test::TempDir directory;
    std::string path = directory.file("grows");
    int status = in_child([&path] {
        if (!apply_resource_limits({.open_files = 64, .file_size = 8192}))
            return 1;
        int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0600);
        char block[4096] = {};
        if (fd < 0 || pwrite(fd, block, sizeof block, 4096) != 4096)
            return 2;
        // The disk overlay's case: an oversize write is an I/O error for the
        // guest (EFBIG), not a SIGXFSZ that ends the VMM.
        if (pwrite(fd, block, sizeof block, 8192) != -1 || errno != EFBIG)
            return 3;
        return 0;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST(ResourceLimits, NoMoreDescriptorsThanAllowed) {
    int status = in_child([] {
        if (!apply_resource_limits({.open_files = 16}))
            return 1;
        for (int attempt = 0; attempt < 32; ++attempt) {
            if (open("/dev/null", O_RDONLY) < 0)
                return errno == EMFILE ? 0 : 2;
        }
        return 3;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST(Identity, DropsUidGidGroupsAndCapabilitiesForGood) {
    if (geteuid() != 0)
        GTEST_SKIP() << "changing to another uid needs root";
    int status = in_child([] {
        if (!drop_identity({kNobody, kNobody}))
            return 1;
        uid_t real = 0, effective = 0, saved = 0;
        gid_t real_group = 0, effective_group = 0, saved_group = 0;
        getresuid(&real, &effective, &saved);
        getresgid(&real_group, &effective_group, &saved_group);
        if (real != kNobody || effective != kNobody || saved != kNobody || real_group != kNobody ||
            effective_group != kNobody || saved_group != kNobody)
            return 2;
        if (getgroups(0, nullptr) != 0)
            return 3;
        if (status_field("CapEff") != "\t0000000000000000" ||
            status_field("CapPrm") != "\t0000000000000000")
            return 4;
        if (setuid(0) == 0 || seteuid(0) == 0)
            return 5;
        // Without CAP_DAC_OVERRIDE root's files are closed now.
        return open("/etc/shadow", O_RDONLY) < 0 && errno == EACCES ? 0 : 6;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST(Identity, EveryThreadChangesItsIds) {
    if (geteuid() != 0)
        GTEST_SKIP() << "changing to another uid needs root";
    // Like imgfmt's write-behind workers, started during setup.
    int status = in_child([] {
        std::mutex mutex;
        std::condition_variable changed;
        bool dropped = false;
        uid_t seen = 0;
        std::thread other([&] {
            std::unique_lock lock(mutex);
            changed.wait(lock, [&] { return dropped; });
            seen = geteuid();
        });
        bool done = drop_identity({kNobody, kNobody}).has_value();
        {
            std::lock_guard lock(mutex);
            dropped = true;
        }
        changed.notify_all();
        other.join();
        return done && seen == kNobody ? 0 : 1;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST(Identity, RefusedOnceAThreadHasAFilter) {
    int status = in_child([] {
        std::mutex mutex;
        std::condition_variable never;
        std::thread filtered([&] {
            if (!install_thread_filter(ThreadRole::Vcpu))
                return;
            std::unique_lock lock(mutex);
            never.wait_for(lock, std::chrono::milliseconds(300));
        });
        usleep(100 * 1000);
        auto dropped = drop_identity({kNobody, kNobody});
        filtered.join();
        if (dropped)
            return 1;
        return dropped.error().message().find("seccomp filter") != std::string::npos ? 0 : 2;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

TEST(Policy, NothingAskedNothingDone) {
    int status = in_child([] {
        if (!confine_process({}) || !confine_main_thread({}))
            return 1;
        // Still free to open files and start processes.
        int fd = open("/proc/self/status", O_RDONLY);
        return fd >= 0 && prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0 ? 0 : 2;
    });
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

}  // namespace
}  // namespace pv::vmm::confine::test
