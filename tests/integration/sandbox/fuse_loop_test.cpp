// The FUSE export and the loop device together, checked with tools we did
// not write: dd through the loop device, qemu-img check and compare of the
// overlay afterwards, sgdisk, mkfs.ext4 and e2fsck for partitions.

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/raw/raw_image.hpp"
#include "patcher/sandbox/jail/fuse_export.hpp"
#include "patcher/sandbox/jail/loop_device.hpp"
#include "tests/integration/sandbox/sandbox_test_support.hpp"
#include "tests/support/support.hpp"

namespace pv::sandbox::test {
namespace {

using namespace std::chrono_literals;
using pv::test::quote;
using pv::test::run;
using pv::test::sha256_of_file;

constexpr uint64_t kMiB = 1024 * 1024;

std::string make_mountpoint(const pv::test::TempDir& dir) {
    const std::string path = dir.file("export");
    ::mkdir(path.c_str(), 0700);
    return path;
}

// A qcow2 overlay over the raw BASE, as the job makes it.
std::unique_ptr<img::Qcow2Image> overlay_over(const std::string& base, const std::string& path) {
    auto backing = img::RawImage::open(base, Access::ReadOnly);
    EXPECT_TRUE(backing) << backing.error().message();
    if (!backing)
        return nullptr;
    auto overlay =
        img::Qcow2Image::create_overlay(path, std::move(*backing), base, img::Format::Raw);
    EXPECT_TRUE(overlay) << overlay.error().message();
    return overlay ? std::move(*overlay) : nullptr;
}

// dd of PAYLOAD's first COUNT blocks of BLOCK bytes to TARGET at block SEEK.
std::string dd_write(const std::string& payload, const std::string& target, const char* block,
                     int seek, int count, const char* flags) {
    return "dd if=" + quote(payload) + " of=" + quote(target) + " bs=" + block +
           " seek=" + std::to_string(seek) + " count=" + std::to_string(count) + " " + flags +
           " conv=notrunc status=none";
}

TEST(FuseExportTest, Qcow2OverlayWrittenThroughLoopDeviceStaysConsistent) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    const std::string base = dir.file("base.raw"), overlay_path = dir.file("overlay.qcow2");
    const std::string expected = dir.file("expected.raw"), payload = dir.file("payload");
    expect_command("qemu-img create -q -f raw " + quote(base) + " 64M && dd if=/dev/urandom of=" +
                   quote(base) + " bs=1M count=16 conv=notrunc status=none && cp " + quote(base) +
                   " " + quote(expected) + " && head -c 1M /dev/urandom > " + quote(payload));
    const std::string base_sha = sha256_of_file(base);
    const std::string mountpoint = make_mountpoint(dir);
    {
        auto overlay = overlay_over(base, overlay_path);
        ASSERT_TRUE(overlay);
        {
            auto exported = FuseExport::start(*overlay, mountpoint, "patchvisor-test");
            ASSERT_TRUE(exported) << exported.error().message();
            auto loop = LoopDevice::attach(exported->file_path(), Access::ReadWrite);
            ASSERT_TRUE(loop) << loop.error().message();
            const std::string device = loop->path();
            // 1 MiB at 4 MiB, cluster-aligned; 12 KiB at 10 MiB + 4 KiB, inside
            // a cluster; 1 MiB straddling the end of the base's data at 16 MiB.
            for (const std::string& target : {device, expected}) {
                const char* flags = target == device ? "oflag=direct" : "";
                expect_command(dd_write(payload, target, "64k", 64, 16, flags));
                expect_command(dd_write(payload, target, "4k", 2561, 3, flags));
                expect_command(dd_write(payload, target, "512k", 31, 2, flags));
            }
            const auto read_back =
                run("dd if=" + device +
                    " bs=64k skip=64 count=16 iflag=direct status=none | sha256sum");
            EXPECT_EQ(read_back.output.substr(0, 64), sha256_of_file(payload));
            ASSERT_TRUE(loop->detach(10s));
            auto stopped = exported->stop();
            EXPECT_TRUE(stopped) << stopped.error().message();
            EXPECT_EQ(exported->io_errors(), 0u);
        }
        auto flushed = overlay->flush();
        ASSERT_TRUE(flushed) << flushed.error().message();
    }
    EXPECT_FALSE(mounted_under(mountpoint));
    EXPECT_FALSE(loop_backed_under(mountpoint));
    expect_command("qemu-img check -q " + quote(overlay_path));
    expect_command("qemu-img compare -q -f raw -F qcow2 " + quote(expected) + " " +
                   quote(overlay_path));
    EXPECT_EQ(sha256_of_file(base), base_sha);
}

TEST(FuseExportTest, MemoryDeviceServesReadsWritesDiscardsAndFlushes) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    const std::string mountpoint = make_mountpoint(dir);
    MemoryDevice disk(16 * kMiB);
    auto exported = FuseExport::start(disk, mountpoint, "patchvisor-test");
    ASSERT_TRUE(exported) << exported.error().message();
    const std::string file = exported->file_path();
    EXPECT_EQ(run("stat -c %s " + quote(file)).output, "16777216\n");
    // The size is fixed: no truncation, no writes past the end.
    EXPECT_NE(run("truncate -s 1M " + quote(file)).exit_code, 0);
    EXPECT_NE(
        run("printf x | dd of=" + quote(file) + " bs=1 seek=16777216 conv=notrunc status=none")
            .exit_code,
        0);
    auto loop = LoopDevice::attach(file, Access::ReadWrite);
    ASSERT_TRUE(loop) << loop.error().message();
    auto partitions = loop->wait_for_partitions(5s);
    ASSERT_TRUE(partitions) << partitions.error().message();
    EXPECT_TRUE(partitions->empty());
    expect_command("printf 'through the loop' | dd of=" + loop->path() +
                   " bs=4096 seek=3 conv=sync,fsync oflag=direct status=none");
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(disk.bytes().data()) + 3 * 4096, 16),
              "through the loop");
    EXPECT_GT(disk.flushes, 0);
    // A discard through the loop device reaches the device as zeroes.
    expect_command("blkdiscard -o 0 -l 1048576 " + loop->path());
    EXPECT_EQ(disk.bytes()[3 * 4096], std::byte{0});
    ASSERT_TRUE(loop->detach(10s));
    ASSERT_TRUE(exported->stop());
    EXPECT_FALSE(mounted_under(mountpoint));
}

TEST(LoopDeviceTest, GptPartitionNodeAppearsAndTakesAFilesystem) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    pv::test::TempDir dir;
    const std::string base = dir.file("base.raw"), overlay_path = dir.file("overlay.qcow2");
    expect_command("qemu-img create -q -f raw " + quote(base) +
                   " 64M && sgdisk -n 1:2048:+40M -t 1:8300 " + quote(base));
    const std::string base_sha = sha256_of_file(base);
    const std::string mountpoint = make_mountpoint(dir);
    {
        auto overlay = overlay_over(base, overlay_path);
        ASSERT_TRUE(overlay);
        auto exported = FuseExport::start(*overlay, mountpoint, "patchvisor-test");
        ASSERT_TRUE(exported) << exported.error().message();
        auto loop = LoopDevice::attach(exported->file_path(), Access::ReadWrite);
        ASSERT_TRUE(loop) << loop.error().message();
        auto partitions = loop->wait_for_partitions(5s);
        ASSERT_TRUE(partitions) << partitions.error().message();
        ASSERT_EQ(*partitions, std::vector<std::string>{loop->path() + "p1"});
        expect_command("mkfs.ext4 -q -F " + (*partitions)[0]);
        ASSERT_TRUE(loop->detach(10s));
        ASSERT_TRUE(exported->stop());
        ASSERT_TRUE(overlay->flush());
    }
    EXPECT_FALSE(loop_backed_under(mountpoint));
    expect_command("qemu-img check -q " + quote(overlay_path));
    const std::string flat = dir.file("flat.raw"), partition = dir.file("partition.raw");
    expect_command("qemu-img convert -f qcow2 -O raw " + quote(overlay_path) + " " + quote(flat) +
                   " && dd if=" + quote(flat) + " of=" + quote(partition) +
                   " bs=1M skip=1 count=40 status=none && e2fsck -fn " + quote(partition));
    EXPECT_EQ(sha256_of_file(base), base_sha);
}

}  // namespace
}  // namespace pv::sandbox::test
