// The public VMM API (<patchvisor/vmm.hpp>, libpatchvisor-vmm.so) running the
// freestanding test guest on /dev/kvm: on the caller's thread and from an
// event loop, with disks given by path or as an open Image, and vsock.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <patchvisor/vmm.hpp>

#include "tests/support/support.hpp"

namespace {

using namespace std::chrono_literals;
using patchvisor::Access;
using patchvisor::Backing;
using patchvisor::ExitReason;
using patchvisor::Image;
using patchvisor::MicroVm;
using patchvisor::VmConfig;
using pv::test::must;
using pv::test::quote;
using pv::test::TempDir;

std::string testguest() {
    return pv::test::built_binary("images/testguest/testguest.elf");
}

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream stream(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(stream, line);)
        lines.push_back(line);
    return lines;
}

bool has_line(const std::vector<std::string>& lines, const std::string& wanted) {
    return std::find(lines.begin(), lines.end(), wanted) != lines.end();
}

bool readable_within(int fd, std::chrono::milliseconds timeout) {
    pollfd watched{fd, POLLIN, 0};
    return ::poll(&watched, 1, static_cast<int>(timeout.count())) == 1;
}

class VmmApi : public ::testing::Test {
  protected:
    TempDir dir;
    std::string serial = dir.file("serial.log");
    std::string base = dir.file("base.qcow2");

    void SetUp() override {
        struct stat status {};
        if (::stat("/dev/kvm", &status) != 0)
            GTEST_SKIP() << "/dev/kvm is absent: cannot run a microVM";
        if (!pv::test::have_program("qemu-img") || !pv::test::have_program("qemu-io"))
            GTEST_SKIP() << "qemu-img/qemu-io not installed (scripts/install-deps)";
        must("qemu-img create -q -f qcow2 " + quote(base) + " 8M");
        must("qemu-io -f qcow2 -c 'write -P 0x11 0 8M' " + quote(base) + " >/dev/null");
    }

    VmConfig config(const std::string& cmdline) {
        VmConfig made(testguest());
        made.cmdline(cmdline).memory_mib(64).serial_log(serial).timeout(60s);
        return made;
    }

    // Our overlay over the base, closed again (its locks released).
    std::string overlay() {
        const auto path = dir.file("overlay.qcow2");
        auto opened = Image::open(base);
        EXPECT_TRUE(opened) << opened.error().message();
        auto made = Image::create_overlay(path, std::move(*opened));
        EXPECT_TRUE(made) << made.error().message();
        return path;
    }

    // What the guest's rw mode writes (images/testguest/blk.c), checked by qemu-io.
    void expect_guest_writes(const std::string& image, const std::string& format) {
        auto read = pv::test::run("qemu-io -f " + format +
                                  " -r -c 'read -P 0x5a 0 4k' -c 'read -P 0xa5 1049088 64k'"
                                  " -c 'read -P 0x3c 8384512 4k' -c 'read -P 0x11 2M 4k' " +
                                  quote(image));
        EXPECT_EQ(read.exit_code, 0) << read.output;
        EXPECT_EQ(read.output.find("Pattern verification failed"), std::string::npos)
            << read.output;
    }

    void run_and_expect_a_clean_reset(MicroVm& vm);
};

TEST_F(VmmApi, RunsOnTheCallersThreadWithADiskGivenByPath) {
    const auto disk = overlay();
    {
        auto vm = MicroVm::create(std::move(
            config("testguest.blk=rw testguest.blk.base=0x11")
                .disk({disk, patchvisor::ImageFormat::Qcow2, Access::ReadWrite, Backing::Allow})));
        ASSERT_TRUE(vm) << vm.error().message();
        run_and_expect_a_clean_reset(*vm);
    }
    // The VM is gone, and with it the lock on its disk.
    EXPECT_EQ(pv::test::run("qemu-img check -q " + quote(disk)).exit_code, 0);
    expect_guest_writes(disk, "qcow2");
}

void VmmApi::run_and_expect_a_clean_reset(MicroVm& vm) {
    auto summary = vm.run();
    ASSERT_TRUE(summary) << summary.error().message();
    EXPECT_EQ(summary->reason, ExitReason::Reset) << summary->detail;
    EXPECT_TRUE(patchvisor::is_clean_exit(summary->reason));
    EXPECT_EQ(patchvisor::to_string(summary->reason), "reset");
    EXPECT_GT(summary->exits.io, 100u);
    EXPECT_EQ(summary->exits.unclaimed, 0u);
    EXPECT_TRUE(summary->first_serial_byte);
    const auto lines = lines_of(serial);
    EXPECT_TRUE(has_line(lines, "ok virtio-blk id=patchvisor")) << ::testing::PrintToString(lines);
    EXPECT_TRUE(has_line(lines, "testguest: virtio-blk done, resetting"));
    EXPECT_FALSE(vm.run()) << "a MicroVm runs once";
    EXPECT_FALSE(vm.take_disk()) << "no Image was given";
}

TEST_F(VmmApi, ADiskFileFollowsABackingFileOnlyWhenAllowed) {
    auto vm = MicroVm::create(std::move(config("testguest.blk=rw").disk({overlay()})));
    ASSERT_FALSE(vm);
    EXPECT_NE(vm.error().message().find("backing file"), std::string::npos) << vm.error().message();
}

TEST_F(VmmApi, StartsOnItsOwnThreadAndAnEventLoopSeesItEnd) {
    auto opened = Image::open(base);
    ASSERT_TRUE(opened);
    auto disk = Image::create_overlay(dir.file("overlay.qcow2"), std::move(*opened));
    ASSERT_TRUE(disk) << disk.error().message();
    auto vm = MicroVm::create(
        std::move(config("testguest.blk=rw testguest.blk.base=0x11").disk(std::move(*disk))));
    ASSERT_TRUE(vm) << vm.error().message();
    EXPECT_FALSE(vm->wait()) << "not started";
    ASSERT_TRUE(vm->start());
    EXPECT_FALSE(vm->start()) << "a MicroVm runs once";
    ASSERT_TRUE(readable_within(vm->exit_fd(), 60s)) << "the run did not end";
    EXPECT_TRUE(vm->ended());
    auto summary = vm->wait();
    ASSERT_TRUE(summary) << summary.error().message();
    EXPECT_EQ(summary->reason, ExitReason::Reset) << summary->detail;
    EXPECT_EQ(vm->wait()->reason, ExitReason::Reset) << "the same answer again";
    EXPECT_TRUE(has_line(lines_of(serial), "testguest: virtio-blk done, resetting"));

    // The Image comes back with the guest's writes, and commits.
    auto back = vm->take_disk();
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_FALSE(vm->take_disk()) << "taken already";
    std::vector<std::byte> sector(4096);
    ASSERT_TRUE(back->read(0, sector));
    EXPECT_EQ(sector, std::vector<std::byte>(4096, std::byte{0x5a}));
    const auto merged = dir.file("merged.raw");
    auto committed =
        std::move(*back).commit({.output = merged, .format = patchvisor::ImageFormat::Raw});
    ASSERT_TRUE(committed) << committed.error().message();
    expect_guest_writes(merged, "raw");
}

TEST_F(VmmApi, StopEndsARunningVmAndTheDiskWaitsForTheEnd) {
    auto opened = Image::open(base, {.access = Access::ReadOnly});
    ASSERT_TRUE(opened);
    auto vm =
        MicroVm::create(std::move(config("testguest.hang").vcpus(2).disk(std::move(*opened))));
    ASSERT_TRUE(vm) << vm.error().message();
    ASSERT_TRUE(vm->start());
    EXPECT_FALSE(readable_within(vm->exit_fd(), 300ms)) << "the guest hangs until stopped";
    EXPECT_FALSE(vm->ended());
    auto early = vm->take_disk();
    ASSERT_FALSE(early);
    EXPECT_NE(early.error().message().find("still running"), std::string::npos);
    vm->stop("the test is done");
    ASSERT_TRUE(readable_within(vm->exit_fd(), 10s));
    auto summary = vm->wait();
    ASSERT_TRUE(summary) << summary.error().message();
    EXPECT_EQ(summary->reason, ExitReason::Stopped);
    EXPECT_EQ(summary->detail, "the test is done");
    EXPECT_TRUE(vm->take_disk());
}

TEST_F(VmmApi, TheTimeoutEndsAStartedRunAndDestroyingARunningVmStopsIt) {
    auto timed = MicroVm::create(std::move(config("testguest.hang").timeout(300ms)));
    ASSERT_TRUE(timed) << timed.error().message();
    ASSERT_TRUE(timed->start());
    auto summary = timed->wait();
    ASSERT_TRUE(summary) << summary.error().message();
    EXPECT_EQ(summary->reason, ExitReason::Timeout);

    auto made = MicroVm::create(std::move(config("testguest.hang").timeout(0ms)));
    ASSERT_TRUE(made) << made.error().message();
    std::optional<MicroVm> running(std::move(*made));
    ASSERT_TRUE(running->start());
    EXPECT_FALSE(readable_within(running->exit_fd(), 200ms));
    const auto before = std::chrono::steady_clock::now();
    running.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - before, 10s);
}

TEST_F(VmmApi, AReadOnlyImageIsServedReadOnly) {
    auto opened = Image::open(base, {.access = Access::ReadOnly});
    ASSERT_TRUE(opened);
    const auto hash = pv::test::sha256_of_file(base);
    auto vm = MicroVm::create(std::move(config("testguest.blk=ro testguest.blk.base=0x11")
                                            .disk(std::move(*opened), Access::ReadWrite)));
    ASSERT_TRUE(vm) << vm.error().message();
    auto summary = vm->run();
    ASSERT_TRUE(summary) << summary.error().message();
    EXPECT_EQ(summary->reason, ExitReason::Reset);
    const auto lines = lines_of(serial);
    EXPECT_TRUE(has_line(lines, "ok virtio-blk readonly write-status=1"))
        << ::testing::PrintToString(lines);
    EXPECT_EQ(pv::test::sha256_of_file(base), hash);
}

TEST_F(VmmApi, VsockConnectsTheGuestToAUnixSocket) {
    const auto uds = dir.file("vsock");
    const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    (uds + "_5000").copy(address.sun_path, sizeof(address.sun_path) - 1);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(::listen(listener, 1), 0);
    auto vm = MicroVm::create(
        std::move(config("testguest.vsock=connect-echo testguest.vsock.port=5000").vsock(3, uds)));
    ASSERT_TRUE(vm) << vm.error().message();
    struct stat status {};
    EXPECT_EQ(::stat(uds.c_str(), &status), 0) << "the VM listens on its socket from create()";
    ASSERT_TRUE(vm->start());
    ASSERT_TRUE(readable_within(listener, 60s)) << "the guest never connected";
    const int stream = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(stream, 0);
    const std::string payload = "patchvisor through vsock\n";
    ASSERT_EQ(::write(stream, payload.data(), payload.size()), ssize_t(payload.size()));
    ::shutdown(stream, SHUT_WR);
    std::string echoed(payload.size() + 1, '\0');
    size_t received = 0;
    for (ssize_t count;
         (count = ::read(stream, echoed.data() + received, echoed.size() - received)) > 0;)
        received += static_cast<size_t>(count);
    echoed.resize(received);
    EXPECT_EQ(echoed, payload);
    auto summary = vm->wait();
    ASSERT_TRUE(summary) << summary.error().message();
    EXPECT_EQ(summary->reason, ExitReason::Reset);
    const auto lines = lines_of(serial);
    EXPECT_TRUE(has_line(lines, "vsock guest cid=3")) << ::testing::PrintToString(lines);
    EXPECT_TRUE(has_line(lines, "ok vsock connect-echo bytes=" + std::to_string(payload.size())));
    vm = tl::unexpected(patchvisor::Error{});
    EXPECT_NE(::stat(uds.c_str(), &status), 0) << "the destroyed VM removes its socket";
    ::close(stream);
    ::close(listener);
}

TEST_F(VmmApi, MistakesAreReportedByCreate) {
    auto two_disks = MicroVm::create(std::move(config("x").disk({base}).disk({base})));
    ASSERT_FALSE(two_disks);
    EXPECT_NE(two_disks.error().message().find("one virtio-blk disk"), std::string::npos);
    auto tiny = MicroVm::create(std::move(config("x").memory_mib(1)));
    ASSERT_FALSE(tiny);
    EXPECT_NE(tiny.error().message().find("--mem-mib 1"), std::string::npos)
        << tiny.error().message();
    auto missing = MicroVm::create(VmConfig(dir.file("no-such-kernel")));
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("no-such-kernel"), std::string::npos);
    patchvisor::Confinement confinement;
    confinement.limits = patchvisor::ResourceLimits{};
    auto confined = MicroVm::create(std::move(config("testguest.quick").confinement(confinement)));
    ASSERT_TRUE(confined) << confined.error().message();
    auto started = confined->start();
    ASSERT_FALSE(started);
    EXPECT_NE(started.error().message().find("whole process"), std::string::npos);
}

}  // namespace
