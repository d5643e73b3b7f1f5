// The jail sandbox with a stand-in agent (stand_in_agent.cpp): namespaces,
// the stream, the deadline, crashes, and that teardown leaves no mount and
// no loop device behind in every case.

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/raw/raw_image.hpp"
#include "patcher/sandbox/jail/jail_sandbox.hpp"
#include "tests/integration/sandbox/sandbox_test_support.hpp"
#include "tests/support/support.hpp"

namespace pv::sandbox::test {
namespace {

using namespace std::chrono_literals;
using pv::test::quote;

constexpr uint64_t kMiB = 1024 * 1024;

std::string own_namespace(const std::string& name) {
    return std::filesystem::read_symlink("/proc/self/ns/" + name).string();
}

TEST(JailSandboxTest, AgentIsPid1OfFreshNamespacesAndTalksOverTheStream) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    MemoryDevice disk(64 * kMiB);
    {
        auto jail = JailSandbox::start(disk, options_for(dir, "stand-in", 30s), "the test asked");
        ASSERT_TRUE(jail) << jail.error().message();
        const Fd stream = (*jail)->take_stream();
        ASSERT_TRUE(stream.valid());
        const auto fields = fields_of(read_line(stream.get(), 10s));
        EXPECT_EQ(fields.at("process"), "1");
        for (const char* name : {"mnt", "pid", "net", "ipc", "uts"}) {
            EXPECT_NE(fields.at(name), own_namespace(name)) << name;
            EXPECT_NE(fields.at(name), "unreadable") << name;
        }
        EXPECT_EQ(fields.at("interfaces"), "lo");
        EXPECT_EQ(fields.at("lo_up"), "yes");
        EXPECT_EQ(fields.at("disk_block"), "yes");
        EXPECT_EQ(fields.at("tmp_tmpfs"), "yes");
        EXPECT_EQ(fields.at("hostname"), "patchvisor-jail");
        const AgentOutcome ended = (*jail)->wait(10s);
        EXPECT_TRUE(ended.succeeded()) << ended.describe();
        EXPECT_NE((*jail)->describe().find("the test asked"), std::string::npos);
        auto torn_down = (*jail)->teardown();
        ASSERT_TRUE(torn_down) << torn_down.error().message();
        EXPECT_TRUE(torn_down->succeeded());
    }
    expect_nothing_left();
    std::ifstream log(dir.file("agent.log"));
    const std::string logged((std::istreambuf_iterator<char>(log)), {});
    EXPECT_NE(logged.find("stand-in stand-in starting"), std::string::npos) << logged;
}

TEST(JailSandboxTest, DeadlineKillsAHangingAgentAndTeardownCompletes) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    MemoryDevice disk(64 * kMiB);
    {
        auto jail = JailSandbox::start(disk, options_for(dir, "stand-in-hang", 2s), "test");
        ASSERT_TRUE(jail) << jail.error().message();
        const Fd stream = (*jail)->take_stream();
        EXPECT_FALSE(read_line(stream.get(), 10s).empty());
        const auto started = std::chrono::steady_clock::now();
        const AgentOutcome ended = (*jail)->wait(60s);
        EXPECT_EQ(ended.ending, Ending::TimedOut) << ended.describe();
        EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
        // The agent's end of the stream died with it.
        EXPECT_EQ(read_line(stream.get(), 5s), "");
        auto torn_down = (*jail)->teardown();
        ASSERT_TRUE(torn_down) << torn_down.error().message();
        EXPECT_EQ(torn_down->ending, Ending::TimedOut);
    }
    expect_nothing_left();
}

TEST(JailSandboxTest, CrashingAgentIsReportedWithItsSignal) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    MemoryDevice disk(64 * kMiB);
    {
        auto jail = JailSandbox::start(disk, options_for(dir, "stand-in-crash", 30s), "test");
        ASSERT_TRUE(jail) << jail.error().message();
        const AgentOutcome ended = (*jail)->wait(10s);
        EXPECT_EQ(ended.ending, Ending::Signaled) << ended.describe();
        EXPECT_EQ(ended.signal, SIGSEGV);
        EXPECT_NE(ended.describe().find("SIGSEGV"), std::string::npos) << ended.describe();
    }  // teardown by the destructor
    expect_nothing_left();
}

TEST(JailSandboxTest, AgentThatNeverConnectsFailsTheStartCleanly) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    MemoryDevice disk(16 * kMiB);
    SandboxOptions options;
    options.agent_path = "/bin/true";
    options.log_path = dir.file("agent.log");
    auto jail = JailSandbox::start(disk, options, "test");
    ASSERT_FALSE(jail);
    EXPECT_NE(jail.error().message().find("before connecting"), std::string::npos)
        << jail.error().message();
    options.agent_path = dir.file("missing-agent");
    EXPECT_FALSE(JailSandbox::start(disk, options, "test"));
    expect_nothing_left();
}

// Batch runs sandboxes side by side: the second jail's mount namespace
// starts with a copy of the first one's FUSE export mount. Tearing the
// first down must neither hang on that copy nor leave anything behind.
TEST(JailSandboxTest, SandboxesSideBySideTearDownIndependently) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    MemoryDevice first_disk(16 * kMiB), second_disk(16 * kMiB);
    const SandboxOptions first_options = options_for(dir, "stand-in-hang", 60s);
    auto first = JailSandbox::start(first_disk, first_options, "test");
    ASSERT_TRUE(first) << first.error().message();
    SandboxOptions second_options = first_options;
    second_options.log_path = dir.file("second.log");
    auto second = JailSandbox::start(second_disk, second_options, "test");
    ASSERT_TRUE(second) << second.error().message();
    EXPECT_NE((*first)->disk_path(), (*second)->disk_path());
    const std::string first_runtime = (*first)->runtime_path();
    const auto started = std::chrono::steady_clock::now();
    auto first_down = (*first)->teardown();
    ASSERT_TRUE(first_down) << first_down.error().message();
    EXPECT_EQ(first_down->ending, Ending::Stopped);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
    EXPECT_FALSE(mounted_under(first_runtime));
    EXPECT_FALSE(std::filesystem::exists(first_runtime));
    EXPECT_FALSE((*second)->outcome()) << "the second sandbox must still run";
    auto second_down = (*second)->teardown();
    ASSERT_TRUE(second_down) << second_down.error().message();
    expect_nothing_left();
}

// Whether a process has LOG as its standard output: the jail's agent does
// (its command line names no host path any more).
bool process_logging_to(const std::string& log) {
    const std::string wanted = std::filesystem::weakly_canonical(log).string();
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        std::error_code unreadable;
        if (std::filesystem::read_symlink(entry.path() / "fd" / "1", unreadable).string() == wanted)
            return true;
    }
    return false;
}

// patchvisor itself killed: the agent must die with it (parent-death
// signal) and the loop device detach by itself (autoclear); what remains is
// a dead FUSE mount under /run/patchvisor/<pid>-<n>/, which is what a later
// `patchvisor gc` removes. The test does that removal itself.
TEST(JailSandboxTest, CrashOfPatchvisorLeavesOnlyADeadMountForGc) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    const SandboxOptions options = options_for(dir, "stand-in-hang", 60s);
    int report[2];
    ASSERT_EQ(::pipe(report), 0);
    const pid_t patchvisor = ::fork();
    if (patchvisor == 0) {
        MemoryDevice disk(16 * kMiB);
        auto jail = JailSandbox::start(disk, options, "test");
        const std::string runtime = jail ? (*jail)->runtime_path() : "";
        (void)!::write(report[1], runtime.data(), runtime.size());
        ::close(report[1]);
        for (;;)
            ::pause();
    }
    ::close(report[1]);
    char buffer[256] = {};
    const ssize_t got = ::read(report[0], buffer, sizeof(buffer) - 1);
    ::close(report[0]);
    // The check below must be able to see the agent.
    EXPECT_TRUE(process_logging_to(options.log_path));
    ::kill(patchvisor, SIGKILL);
    ::waitpid(patchvisor, nullptr, 0);
    ASSERT_GT(got, 0) << "the jail did not start in the child";
    const std::string runtime(buffer, static_cast<size_t>(got));
    const auto until = std::chrono::steady_clock::now() + 10s;
    while ((process_logging_to(options.log_path) || loop_backed_under(runtime)) &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(process_logging_to(options.log_path)) << "the agent outlived patchvisor";
    EXPECT_FALSE(loop_backed_under(runtime)) << pv::test::run("losetup -a").output;
    // What gc does: lazily unmount the dead export, remove the directory.
    EXPECT_TRUE(mounted_under(runtime + "/export"));
    expect_command("umount -l " + quote(runtime + "/export") + " && rmdir " +
                   quote(runtime + "/export") + " && rm -f " + quote(runtime + "/agent.sock") +
                   " && rmdir " + quote(runtime));
    EXPECT_FALSE(mounted_under(runtime));
}

// The real agent mounts the guest filesystem inside the jail; killing it
// must still let the loop device and the export go, and what it wrote
// before must be in the overlay, the base untouched.
TEST(JailSandboxTest, KilledAgentWithTheDiskMountedStillTearsDown) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    const std::string base = dir.file("base.raw"), overlay_path = dir.file("overlay.qcow2");
    expect_command("qemu-img create -q -f raw " + quote(base) +
                   " 64M && sgdisk -n 1:2048:+40M -t 1:8300 " + quote(base) +
                   " >/dev/null && mkfs.ext4 -q -F -E offset=1048576 " + quote(base) + " 40M");
    const std::string base_sha = pv::test::sha256_of_file(base);
    {
        auto backing = img::RawImage::open(base, Access::ReadOnly);
        ASSERT_TRUE(backing);
        auto overlay = img::Qcow2Image::create_overlay(overlay_path, std::move(*backing), base,
                                                       img::Format::Raw);
        ASSERT_TRUE(overlay) << overlay.error().message();
        {
            auto jail =
                JailSandbox::start(**overlay, options_for(dir, "stand-in-mount", 3s), "test");
            ASSERT_TRUE(jail) << jail.error().message();
            const Fd stream = (*jail)->take_stream();
            EXPECT_FALSE(read_line(stream.get(), 10s).empty());
            EXPECT_EQ((*jail)->wait(60s).ending, Ending::TimedOut);
            auto torn_down = (*jail)->teardown();
            ASSERT_TRUE(torn_down) << torn_down.error().message();
        }
        ASSERT_TRUE((*overlay)->flush());
    }
    expect_nothing_left();
    expect_command("qemu-img check -q " + quote(overlay_path));
    const std::string flat = dir.file("flat.raw"), partition = dir.file("partition.raw");
    expect_command("qemu-img convert -f qcow2 -O raw " + quote(overlay_path) + " " + quote(flat) +
                   " && dd if=" + quote(flat) + " of=" + quote(partition) +
                   " bs=1M skip=1 count=40 status=none");
    const auto content = pv::test::run("debugfs -R 'cat /written-by-stand-in' " + quote(partition));
    EXPECT_NE(content.output.find("hello from the jail"), std::string::npos) << content.output;
    EXPECT_EQ(pv::test::sha256_of_file(base), base_sha);
}

// Choosing needs no privileges: the jail, with a reason, until the microVM
// sandbox exists; --sandbox values parse or fail clearly.
TEST(SandboxChoiceTest, PicksTheJailWithAReasonAndParsesRequests) {
    auto automatic = choose_sandbox(SandboxRequest::Auto);
    ASSERT_TRUE(automatic) << automatic.error().message();
    EXPECT_EQ(automatic->kind, SandboxKind::Jail);
    EXPECT_FALSE(automatic->reason.empty());
    EXPECT_EQ(kind_name(choose_sandbox(SandboxRequest::Jail)->kind), "jail");
    EXPECT_FALSE(choose_sandbox(SandboxRequest::MicroVm));
    EXPECT_EQ(parse_request("auto").value(), SandboxRequest::Auto);
    EXPECT_EQ(parse_request("microvm").value(), SandboxRequest::MicroVm);
    EXPECT_FALSE(parse_request("chroot"));
    EXPECT_EQ((AgentOutcome{Ending::Exited, 3, 0}.describe()), "exited with status 3");
    EXPECT_FALSE((AgentOutcome{Ending::TimedOut, 0, SIGKILL}.succeeded()));
}

}  // namespace
}  // namespace pv::sandbox::test
