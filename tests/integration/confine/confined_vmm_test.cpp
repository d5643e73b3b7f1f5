// A real confined patchvisor-vmm (seccomp per thread, no_new_privs, rlimits,
// optionally uid 65534) running the test guest: the allow-lists suffice for
// a clean run, every thread is confined while the guest runs, and a
// forbidden syscall in a confined MicroVm's event loop kills it.

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child.hpp"
#include "tests/support/support.hpp"
#include "vmm/micro_vm.hpp"

namespace pv::vmm::confine::test {
namespace {

using namespace std::chrono_literals;

const std::string kResetLine = "testguest: all tests passed, resetting";

std::string slurp(const std::string& path) {
    std::ifstream stream(path);
    std::stringstream buffer;
    buffer << stream.rdbuf();
    return buffer.str();
}

std::string last_line(const std::string& text) {
    auto end = text.find_last_not_of('\n');
    if (end == std::string::npos)
        return "";
    auto start = text.rfind('\n', end);
    return text.substr(start == std::string::npos ? 0 : start + 1, end - start);
}

bool kvm_present() {
    struct stat status {};
    return stat("/dev/kvm", &status) == 0;
}

#define SKIP_WITHOUT_KVM() \
    if (!kvm_present())    \
    GTEST_SKIP() << "/dev/kvm is absent: cannot run a microVM"

// patchvisor-vmm on the test guest as a child process of this test, its
// serial log, stdout and stderr in DIRECTORY.
class Vmm {
  public:
    Vmm(const pv::test::TempDir& directory, std::vector<std::string> arguments)
        : m_directory(directory.path()) {
        std::vector<std::string> argv = {pv::test::built_binary("vmm/patchvisor-vmm"),
                                         "--kernel",
                                         pv::test::built_binary("images/testguest/testguest.elf"),
                                         "--serial-log",
                                         serial_path(),
                                         "--json"};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        std::string out = m_directory + "/stdout", err = m_directory + "/stderr";
        m_pid = fork();
        if (m_pid == 0) {
            int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(out_fd, STDOUT_FILENO);
            dup2(err_fd, STDERR_FILENO);
            std::vector<char*> pointers;
            for (auto& argument : argv)
                pointers.push_back(argument.data());
            pointers.push_back(nullptr);
            execv(pointers[0], pointers.data());
            _exit(127);
        }
    }
    Vmm(const Vmm&) = delete;
    Vmm& operator=(const Vmm&) = delete;
    ~Vmm() {
        if (m_pid > 0 && !m_reaped) {
            kill(m_pid, SIGKILL);
            waitpid(m_pid, nullptr, 0);
        }
    }

    [[nodiscard]] pid_t pid() const { return m_pid; }
    [[nodiscard]] std::string serial_path() const { return m_directory + "/serial.log"; }
    [[nodiscard]] std::string serial() const { return slurp(serial_path()); }
    [[nodiscard]] std::string stderr_text() const { return slurp(m_directory + "/stderr"); }
    [[nodiscard]] nlohmann::json summary() const {
        return nlohmann::json::parse(last_line(slurp(m_directory + "/stdout")), nullptr, false);
    }

    // The wait status once the VMM has ended.
    int wait() {
        int status = 0;
        waitpid(m_pid, &status, 0);
        m_reaped = true;
        return status;
    }

    // Polls until CONDITION holds or TIMEOUT passes.
    template <class Condition>
    static bool eventually(Condition condition, std::chrono::milliseconds timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!condition()) {
            if (std::chrono::steady_clock::now() > deadline)
                return false;
            std::this_thread::sleep_for(10ms);
        }
        return true;
    }

  private:
    std::string m_directory;
    pid_t m_pid = -1;
    bool m_reaped = false;
};

// "Key:\tvalue" lines of /proc/PID/task/TID/status.
std::map<std::string, std::string> task_status(pid_t pid, const std::string& task) {
    std::map<std::string, std::string> fields;
    std::ifstream status(fmt::format("/proc/{}/task/{}/status", pid, task));
    for (std::string line; std::getline(status, line);) {
        auto colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        auto value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(" \t"));
        fields[line.substr(0, colon)] = value;
    }
    return fields;
}

std::vector<std::string> tasks_of(pid_t pid) {
    std::vector<std::string> tasks;
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), error))
        tasks.push_back(entry.path().filename());
    return tasks;
}

// Soft and hard value of a /proc/PID/limits row ("Max open files  1024  1024  files").
std::pair<std::string, std::string> limit_of(pid_t pid, const std::string& row) {
    std::ifstream limits(fmt::format("/proc/{}/limits", pid));
    for (std::string line; std::getline(limits, line);) {
        if (line.rfind(row, 0) != 0)
            continue;
        std::istringstream values(line.substr(row.size()));
        std::string soft, hard;
        values >> soft >> hard;
        return {soft, hard};
    }
    return {};
}

void expect_clean_reset(Vmm& vmm) {
    int status = vmm.wait();
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status) << "\n" << vmm.stderr_text();
    EXPECT_EQ(last_line(vmm.serial()), kResetLine);
    auto summary = vmm.summary();
    ASSERT_TRUE(summary.is_object()) << vmm.stderr_text();
    EXPECT_EQ(summary["exit_reason"], "reset");
    EXPECT_GT(summary["peak_rss_kib"].get<uint64_t>(), 0u) << "read after confinement";
    EXPECT_GT(summary["guest_resident_kib"].get<uint64_t>(), 0u);
}

TEST(ConfinedVmm, RunsTheTestGuestToACleanReset) {
    SKIP_WITHOUT_KVM();
    pv::test::TempDir directory;
    Vmm vmm(directory, {"--cmdline", "console=ttyS0 confined", "--timeout-s", "60"});
    expect_clean_reset(vmm);
}

TEST(ConfinedVmm, RunsAsNobodyWithTwoVcpus) {
    SKIP_WITHOUT_KVM();
    if (geteuid() != 0)
        GTEST_SKIP() << "--uid needs root";
    pv::test::TempDir directory;
    Vmm vmm(directory, {"--cmdline", "console=ttyS0 confined", "--vcpus", "2", "--uid", "65534",
                        "--gid", "65534", "--timeout-s", "60"});
    expect_clean_reset(vmm);
}

// A 64 MiB raw disk, or a qcow2 overlay over one, in DIRECTORY.
std::string make_disk(const pv::test::TempDir& directory, const std::string& format) {
    std::string raw = directory.file("disk.raw");
    pv::test::must("truncate -s 64M " + pv::test::quote(raw));
    if (format == "raw")
        return raw;
    std::string overlay = directory.file("disk.qcow2");
    pv::test::must("qemu-img create -q -f qcow2 -F raw -b " + pv::test::quote(raw) + " " +
                   pv::test::quote(overlay));
    return overlay;
}

class ConfinedDisk : public ::testing::TestWithParam<std::string> {};

TEST_P(ConfinedDisk, ServesVirtioBlkAsNobodyAndFlushesAtTheEnd) {
    SKIP_WITHOUT_KVM();
    if (geteuid() != 0)
        GTEST_SKIP() << "--uid needs root";
    if (!pv::test::have_program("qemu-img"))
        GTEST_SKIP() << "qemu-img (qemu-utils) is absent";
    pv::test::TempDir directory;
    std::string disk = make_disk(directory, GetParam());
    // The disk thread's list (reads, writes, flushes) and the main thread's
    // flush after the run: the guest writes, reads back and flushes.
    Vmm vmm(directory, {"--cmdline", "testguest.blk=rw", "--disk", disk, "--uid", "65534", "--gid",
                        "65534", "--timeout-s", "60"});
    int status = vmm.wait();
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status) << "\n" << vmm.stderr_text();
    EXPECT_EQ(last_line(vmm.serial()), "testguest: virtio-blk done, resetting") << vmm.serial();
    EXPECT_EQ(vmm.serial().find("FAIL"), std::string::npos) << vmm.serial();
    if (GetParam() == "qcow2")
        pv::test::must("qemu-img check -q " + pv::test::quote(disk));
}

INSTANTIATE_TEST_SUITE_P(Formats, ConfinedDisk, ::testing::Values("raw", "qcow2"));

TEST(ConfinedVmm, EveryThreadIsConfinedWhileTheGuestRuns) {
    SKIP_WITHOUT_KVM();
    if (geteuid() != 0)
        GTEST_SKIP() << "--uid needs root";
    pv::test::TempDir directory;
    // A qcow2 overlay: imgfmt's write-behind workers join the threads.
    std::string disk = make_disk(directory, "qcow2");
    Vmm vmm(directory, {"--cmdline", "testguest.hang", "--vcpus", "2", "--disk", disk, "--uid",
                        "65534", "--gid", "65534", "--timeout-s", "60"});
    ASSERT_TRUE(Vmm::eventually(
        [&] { return vmm.serial().find("hanging as asked") != std::string::npos; }, 30s))
        << vmm.stderr_text();
    // Main (vCPU 0), vCPU 1, the event loop, the disk thread and imgfmt's
    // write-behind workers; each of ours installs its own filter
    // as it starts, so give the last one a moment. KVM (Linux 6.14+) adds
    // its NX-huge-page recovery worker, a user task cloned from the vCPU
    // that first ran, filter included.
    auto all_filtered = [&] {
        auto tasks = tasks_of(vmm.pid());
        for (const auto& task : tasks) {
            if (task_status(vmm.pid(), task)["Seccomp"] != "2")
                return false;
        }
        return tasks.size() >= 4 + 3;
    };
    EXPECT_TRUE(Vmm::eventually(all_filtered, 5s));
    for (const auto& task : tasks_of(vmm.pid())) {
        auto status = task_status(vmm.pid(), task);
        EXPECT_EQ(status["Seccomp"], "2") << "task " << task;
        // Ours have the process filter and their role's; other threads
        // (imgfmt's workers) the process filter at least.
        if (task == std::to_string(vmm.pid()) || status["Name"].rfind("pv-", 0) == 0) {
            EXPECT_EQ(status["Seccomp_filters"], "2") << "task " << task << " " << status["Name"];
        } else {
            EXPECT_NE(status["Seccomp_filters"], "0") << "task " << task << " " << status["Name"];
        }
        EXPECT_EQ(status["NoNewPrivs"], "1") << "task " << task;
        EXPECT_EQ(status["Uid"], "65534\t65534\t65534\t65534") << "task " << task;
        EXPECT_EQ(status["Gid"], "65534\t65534\t65534\t65534") << "task " << task;
        EXPECT_EQ(status["Groups"], "") << "task " << task;
        EXPECT_EQ(status["CapEff"], "0000000000000000") << "task " << task;
        EXPECT_EQ(status["CapPrm"], "0000000000000000") << "task " << task;
    }
    using Limit = std::pair<std::string, std::string>;
    EXPECT_EQ(limit_of(vmm.pid(), "Max core file size"), Limit("0", "0"));
    EXPECT_EQ(limit_of(vmm.pid(), "Max open files"), Limit("1024", "1024"));
    EXPECT_EQ(limit_of(vmm.pid(), "Max locked memory"), Limit("0", "0"));
    // Room for the disk to grow (process_limits.hpp): its size now, its
    // 64 MiB virtual size, 1/1024 of that and 16 MiB.
    struct stat file {};
    ASSERT_EQ(stat(disk.c_str(), &file), 0);
    std::string file_size = std::to_string(file.st_size + (64ull << 20) + (64 << 10) + (16 << 20));
    EXPECT_EQ(limit_of(vmm.pid(), "Max file size"), Limit(file_size, file_size));
}

TEST(ConfinedVmm, WithoutADiskFilesStopAtTheSerialLogCapAndOneFilterPerThread) {
    SKIP_WITHOUT_KVM();
    pv::test::TempDir directory;
    Vmm vmm(directory, {"--cmdline", "testguest.hang", "--timeout-s", "60"});
    ASSERT_TRUE(Vmm::eventually(
        [&] { return vmm.serial().find("hanging as asked") != std::string::npos; }, 30s))
        << vmm.stderr_text();
    std::string file_size = std::to_string((64ull << 20) + 4096);
    EXPECT_EQ(limit_of(vmm.pid(), "Max file size"), std::make_pair(file_size, file_size));
    // No thread was left by setup, so no process filter: each of ours has
    // its role's alone (vmm/confine/thread_filters.hpp, step 1).
    for (const auto& task : tasks_of(vmm.pid())) {
        auto status = task_status(vmm.pid(), task);
        EXPECT_EQ(status["Seccomp"], "2") << "task " << task;
        if (task == std::to_string(vmm.pid()) || status["Name"].rfind("pv-", 0) == 0) {
            EXPECT_EQ(status["Seccomp_filters"], "1") << "task " << task << " " << status["Name"];
        }
    }
}

TEST(ConfinedVmm, NoSeccompLeavesOnlyTheFiltersOff) {
    SKIP_WITHOUT_KVM();
    pv::test::TempDir directory;
    Vmm vmm(directory, {"--cmdline", "testguest.hang", "--no-seccomp", "--timeout-s", "60"});
    ASSERT_TRUE(Vmm::eventually(
        [&] { return vmm.serial().find("hanging as asked") != std::string::npos; }, 30s))
        << vmm.stderr_text();
    for (const auto& task : tasks_of(vmm.pid())) {
        auto status = task_status(vmm.pid(), task);
        EXPECT_EQ(status["Seccomp"], "0") << "task " << task;
        EXPECT_EQ(status["NoNewPrivs"], "1") << "task " << task;
    }
    EXPECT_EQ(limit_of(vmm.pid(), "Max core file size"),
              std::make_pair(std::string("0"), std::string("0")));
}

// A MicroVm in a forked child whose event loop, once running, makes
// SYSCALL_NUMBER (openat of a file: never on the allow-list).
int run_vm_whose_event_loop_opens_a_file(bool seccomp) {
    return in_child([seccomp] {
        VmConfig config;
        config.kernel_path = pv::test::built_binary("images/testguest/testguest.elf");
        config.cmdline = "console=ttyS0";
        config.timeout = 60s;
        config.confinement.seccomp = seccomp;
        auto vm = MicroVm::create(config);
        if (!vm)
            return 10;
        (*vm)->events().post(
            [] { (void)syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY); });
        auto summary = (*vm)->run();
        return summary && summary->reason == ExitReason::Reset ? 0 : 11;
    });
}

TEST(ConfinedMicroVm, AForbiddenSyscallInTheEventLoopKillsTheProcess) {
    SKIP_WITHOUT_KVM();
    int status = run_vm_whose_event_loop_opens_a_file(true);
    EXPECT_TRUE(killed_by_sigsys(status)) << describe_status(status);
    // The control: unconfined, the same VM opens the file and runs to reset.
    status = run_vm_whose_event_loop_opens_a_file(false);
    EXPECT_TRUE(exited_cleanly(status)) << describe_status(status);
}

}  // namespace
}  // namespace pv::vmm::confine::test
