// patchvisor-vmm --disk: the test guest (images/testguest/blk*.c) drives
// virtio-blk through ioeventfd doorbells and an irqfd interrupt. The disk
// is a qcow2 overlay made by imgfmt over a base qemu-img made; the expected
// result is built independently with qemu-io, and qemu-img check / compare
// judge ours.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "../vmm/run_vmm.hpp"
#include "imgfmt/image.hpp"
#include "imgfmt/lock.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "tests/support/support.hpp"

namespace pv::vmm::test {
namespace {

using pv::test::must;
using pv::test::quote;
using pv::test::TempDir;

constexpr uint64_t kDiskBytes = 8 << 20;
constexpr uint64_t kDiskSectors = kDiskBytes / 512;
constexpr const char* kBasePattern = "0x11";

#define SKIP_WITHOUT_TOOLS()                                                       \
    if (!kvm_present())                                                            \
        GTEST_SKIP() << "/dev/kvm is absent: cannot run a microVM";                \
    if (!pv::test::have_program("qemu-img") || !pv::test::have_program("qemu-io")) \
    GTEST_SKIP() << "qemu-img/qemu-io not installed (scripts/install-deps)"

// A qcow2 base of 8 MiB filled with the base pattern, and our overlay on it.
struct Disk {
    TempDir directory;
    std::string base = directory.file("base.qcow2");
    std::string overlay = directory.file("overlay.qcow2");

    Disk() {
        must("qemu-img create -q -f qcow2 " + quote(base) + " 8M");
        must(fmt::format("qemu-io -f qcow2 -c 'write -P {} 0 8M' {} >/dev/null", kBasePattern,
                         quote(base)));
        auto backing = img::open_image(base, Access::ReadOnly, img::Backing::Refuse);
        EXPECT_TRUE(backing) << backing.error().message();
        auto made =
            img::Qcow2Image::create_overlay(overlay, std::move(*backing), base, img::Format::Qcow2);
        EXPECT_TRUE(made) << made.error().message();
        EXPECT_TRUE((*made)->flush());
    }
};

VmmRun run_guest(const std::string& mode, const std::string& disk) {
    return run_vmm({"--kernel", testguest_path(), "--cmdline",
                    fmt::format("testguest.blk={} testguest.blk.base={}", mode, kBasePattern),
                    "--disk", disk, "--timeout-s", "60"});
}

// The transcript from the first virtio-blk line on.
std::vector<std::string> blk_lines(const VmmRun& run) {
    std::vector<std::string> lines;
    for (const auto& line : run.serial) {
        if (line.rfind("ok virtio-blk", 0) == 0 || line.rfind("FAIL", 0) == 0 ||
            line.rfind("testguest: virtio-blk", 0) == 0)
            lines.push_back(line);
    }
    return lines;
}

void expect_lines(const VmmRun& run, const std::vector<std::string>& expected) {
    auto lines = blk_lines(run);
    EXPECT_EQ(lines, expected) << "stderr: " << run.stderr_text;
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_EQ(run.summary.value("exit_reason", ""), "reset") << run.stdout_text;
}

std::string found_line(int read_only) {
    return fmt::format("ok virtio-blk found base=0xd0000000 irq=5 capacity={} read-only={}",
                       kDiskSectors, read_only);
}

TEST(VirtioBlk, GuestWritesLandInTheOverlayAsQemuWouldWriteThem) {
    SKIP_WITHOUT_TOOLS();
    Disk disk;
    const auto base_hash = pv::test::sha256_of_file(disk.base);
    auto run = run_guest("rw", disk.overlay);
    const uint64_t last = kDiskSectors - 8;
    expect_lines(run,
                 {
                     found_line(0),
                     "ok virtio-blk write sector=0 bytes=4096 pattern=0x5a",
                     "ok virtio-blk write sector=2049 bytes=65536 pattern=0xa5",
                     fmt::format("ok virtio-blk write sector={} bytes=4096 pattern=0x3c", last),
                     "ok virtio-blk flush status=0 by-interrupt irq=5 interrupt-status=0x1",
                     "ok virtio-blk verify sector=0 bytes=4096 pattern=0x5a",
                     "ok virtio-blk verify sector=2049 bytes=65536 pattern=0xa5",
                     fmt::format("ok virtio-blk verify sector={} bytes=4096 pattern=0x3c", last),
                     "ok virtio-blk base sector=4096 bytes=4096 pattern=0x11",
                     "ok virtio-blk id=patchvisor",
                     "testguest: virtio-blk done, resetting",
                 });
    // The kernel command line announced the transport.
    ASSERT_GE(run.serial.size(), 3u);
    EXPECT_NE(run.serial[2].find("virtio_mmio.device=4K@0xd0000000:5"), std::string::npos);
    // Doorbells went to ioeventfds, not through MMIO exits one by one: the
    // exits counted are register accesses of set-up and interrupt handling.
    EXPECT_EQ(run.summary["exits"]["unclaimed"].get<uint64_t>(), 0u);

    auto check = pv::test::run("qemu-img check -q " + quote(disk.overlay));
    EXPECT_EQ(check.exit_code, 0) << check.output;
    // What the guest did, done by qemu-io on a copy of the base.
    const auto expected = disk.directory.file("expected.qcow2");
    must("cp " + quote(disk.base) + " " + quote(expected));
    must(
        fmt::format("qemu-io -f qcow2 -c 'write -P 0x5a 0 4096' -c 'write -P 0xa5 {} 65536' "
                    "-c 'write -P 0x3c {} 4096' {} >/dev/null",
                    2049 * 512, last * 512, quote(expected)));
    auto compare = pv::test::run("qemu-img compare " + quote(disk.overlay) + " " + quote(expected));
    EXPECT_EQ(compare.exit_code, 0) << compare.output;
    EXPECT_EQ(pv::test::sha256_of_file(disk.base), base_hash) << "the base must stay untouched";
}

TEST(VirtioBlk, UnflushedWritesReachTheFileWhenTheRunEnds) {
    SKIP_WITHOUT_TOOLS();
    Disk disk;
    auto run = run_vmm({"--kernel", testguest_path(), "--cmdline", "testguest.blk=write-hang",
                        "--disk", disk.overlay, "--timeout-s", "1"});
    EXPECT_EQ(run.exit_code, 2) << run.stderr_text;
    EXPECT_EQ(run.summary.value("exit_reason", ""), "timeout") << run.stdout_text;
    ASSERT_FALSE(run.serial.empty());
    EXPECT_EQ(run.serial.back(), "testguest: hanging with an unflushed write");
    auto check = pv::test::run("qemu-img check -q " + quote(disk.overlay));
    EXPECT_EQ(check.exit_code, 0) << check.output;
    const auto expected = disk.directory.file("expected.qcow2");
    must("cp " + quote(disk.base) + " " + quote(expected));
    must("qemu-io -f qcow2 -c 'write -P 0x5a 0 4096' " + quote(expected) + " >/dev/null");
    auto compare = pv::test::run("qemu-img compare " + quote(disk.overlay) + " " + quote(expected));
    EXPECT_EQ(compare.exit_code, 0) << compare.output;
}

// 128 requests of 1 MiB, each with a QueueNotify write: KVM_IOEVENTFD
// takes the doorbells inside the kernel, so the MMIO exits left are the
// set-up's register accesses, far fewer than the requests.
TEST(VirtioBlk, DoorbellsAreIoeventfdsNotVcpuExits) {
    SKIP_WITHOUT_TOOLS();
    Disk disk;
    auto run = run_vmm({"--kernel", testguest_path(), "--cmdline",
                        "testguest.blk=bench testguest.blk.mib=128", "--disk",
                        disk.overlay + ",readonly", "--timeout-s", "60"});
    auto lines = blk_lines(run);
    ASSERT_EQ(lines.size(), 3u) << run.stderr_text;
    EXPECT_EQ(lines[1],
              "ok virtio-blk bench mib=128 request-kib=1024 segment-kib=1024 sequential depth=4 "
              "errors=0");
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_LT(run.summary["exits"]["mmio"].get<uint64_t>(), 64u) << run.stdout_text;
}

// Requests as Linux sends them, a 4 KiB page per buffer, at random sectors
// of the qcow2 overlay: each is answered whole (length and status checked by
// the guest), and none counts as a fault.
TEST(VirtioBlk, PageSegmentedRandomReadsAreAnsweredWhole) {
    SKIP_WITHOUT_TOOLS();
    Disk disk;
    auto run = run_vmm({"--kernel", testguest_path(), "--cmdline",
                        "testguest.blk=bench testguest.blk.mib=4 testguest.blk.request-kib=32 "
                        "testguest.blk.segment-kib=4 testguest.blk.random=1",
                        "--disk", disk.overlay + ",readonly", "--timeout-s", "60"});
    auto lines = blk_lines(run);
    ASSERT_EQ(lines.size(), 3u) << run.stderr_text;
    EXPECT_EQ(lines[1],
              "ok virtio-blk bench mib=4 request-kib=32 segment-kib=4 random depth=4 errors=0");
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    for (const auto& [name, count] : run.summary["disk_faults"].items())
        EXPECT_EQ(count, 0) << name;
}

TEST(VirtioBlk, ReadOnlyDiskRefusesWritesAndStaysUnchanged) {
    SKIP_WITHOUT_TOOLS();
    Disk disk;
    const auto hash = pv::test::sha256_of_file(disk.overlay);
    auto run = run_guest("ro", disk.overlay + ",readonly");
    expect_lines(run, {
                          found_line(1),
                          "ok virtio-blk readonly write-status=1",
                          "ok virtio-blk readonly-read sector=0 bytes=4096 pattern=0x11",
                          "testguest: virtio-blk done, resetting",
                      });
    EXPECT_EQ(run.summary["disk_faults"]["read_only_device"], 1) << run.stdout_text;
    EXPECT_EQ(pv::test::sha256_of_file(disk.overlay), hash);
}

TEST(VirtioBlk, MalformedChainsGetTheirExactAnswerAndTheVmmSurvives) {
    SKIP_WITHOUT_TOOLS();
    Disk disk;
    auto run = run_guest("bad", disk.overlay);
    expect_lines(run,
                 {
                     found_line(0),
                     "ok virtio-blk bad next-out-of-range used-length=0 status=0xff",
                     "ok virtio-blk bad descriptor-loop used-length=0 status=0xff",
                     "ok virtio-blk bad address-outside-ram used-length=0 status=0xff",
                     "ok virtio-blk bad indirect-bad-length used-length=0 status=0xff",
                     "ok virtio-blk bad readable-after-writable used-length=0 status=0xff",
                     "ok virtio-blk bad short-header used-length=1 status=0x1",
                     "ok virtio-blk bad sector-past-end used-length=1 status=0x1",
                     "ok virtio-blk bad sector-overflow used-length=1 status=0x1",
                     "ok virtio-blk bad unknown-type used-length=1 status=0x2",
                     "ok virtio-blk bad good-after-faults used-length=513 status=0x0",
                     "ok virtio-blk bad head-out-of-range-then-good used-length=513 status=0x0",
                     "ok virtio-blk bad avail-index-jump needs-reset=1 interrupt-status=0x3",
                     "ok virtio-blk bad after-reset-good used-length=513 status=0x0",
                     "testguest: virtio-blk done, resetting",
                 });
    // Each refused request counted by its reason; faults of the chain itself
    // (the first five) never reach the device.
    const nlohmann::json faults = {{"bad_header", 1}, {"out_of_range", 2}, {"unsupported_type", 1}};
    for (const auto& [name, count] : run.summary["disk_faults"].items())
        EXPECT_EQ(count, faults.value(name, 0)) << name << " in " << run.stdout_text;
    EXPECT_EQ(run.summary["disk_faults"].size(), 12u) << run.stdout_text;
    auto check = pv::test::run("qemu-img check -q " + quote(disk.overlay));
    EXPECT_EQ(check.exit_code, 0) << check.output;
}

TEST(VirtioBlk, SecondWriterIsRefused) {
    SKIP_WITHOUT_TOOLS();
    Disk disk;
    auto held = img::ImageLock::acquire(disk.overlay);
    ASSERT_TRUE(held) << held.error().message();
    auto run = run_guest("rw", disk.overlay);
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.stderr_text.find("in use by another process"), std::string::npos)
        << run.stderr_text;
    EXPECT_TRUE(run.serial.empty()) << "the guest must not start";
}

TEST(VirtioBlk, BadDiskArgumentsFailBeforeBoot) {
    SKIP_WITHOUT_TOOLS();
    TempDir directory;
    auto missing = run_guest("rw", directory.file("missing.qcow2"));
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.stderr_text.find("missing.qcow2"), std::string::npos) << missing.stderr_text;
    // A qcow2 naming a backing file that is gone.
    const auto base = directory.file("base.qcow2");
    const auto overlay = directory.file("overlay.qcow2");
    must("qemu-img create -q -f qcow2 " + quote(base) + " 1M");
    must("qemu-img create -q -f qcow2 -F qcow2 -b " + quote(base) + " " + quote(overlay));
    must("rm " + quote(base));
    auto orphan = run_guest("rw", overlay);
    EXPECT_EQ(orphan.exit_code, 1);
    EXPECT_NE(orphan.stderr_text.find("base.qcow2"), std::string::npos) << orphan.stderr_text;
}

}  // namespace
}  // namespace pv::vmm::test
