// virtio-blk requests onto a real qcow2 overlay over a raw base made by
// qemu-img; QEMU's own tools then judge the result.

#include <gtest/gtest.h>

#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/raw/raw_image.hpp"
#include "ring_builder.hpp"
#include "tests/support/support.hpp"
#include "vmm/devices/block/block.hpp"
#include "vmm/devices/block/block_request.hpp"

namespace pv::vmm {
namespace {

using virtio::DescriptorChain;
using virtio::test::kDataArea;

constexpr uint64_t kHeader = kDataArea;
constexpr uint64_t kStatus = kDataArea + 0x800;
constexpr uint64_t kData = kDataArea + 0x1000;

class BlockOverlayTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::have_program("qemu-img") || !test::have_program("qemu-io"))
            GTEST_SKIP() << "qemu-img and qemu-io are needed";
        base = directory.file("base.raw");
        overlay = directory.file("overlay.qcow2");
        // 4 MiB base whose first MiB holds 0x11, so reads through the overlay
        // must fall back to the backing file.
        ASSERT_EQ(test::run("qemu-img create -q -f raw " + test::quote(base) + " 4M").exit_code, 0);
        ASSERT_EQ(
            test::run("qemu-io -f raw -c 'write -P 0x11 0 1M' " + test::quote(base)).exit_code, 0);
    }

    std::unique_ptr<img::BlockDevice> make_overlay() {
        auto backing = img::RawImage::open(base, Access::ReadOnly);
        EXPECT_TRUE(backing) << backing.error().message();
        auto image =
            img::Qcow2Image::create_overlay(overlay, std::move(*backing), base, img::Format::Raw);
        EXPECT_TRUE(image) << image.error().message();
        return image ? std::move(*image) : nullptr;
    }

    // Executes one request with a single data buffer and returns its status.
    uint8_t execute(VirtioBlock& block, uint32_t type, uint64_t sector, uint32_t length,
                    bool data_writable) {
        EXPECT_TRUE(memory.write(kHeader, BlockRequestHeader{type, 0, sector}));
        DescriptorChain chain{0, {{kHeader, 16, false}}};
        if (length > 0)
            chain.buffers.push_back({kData, length, data_writable});
        chain.buffers.push_back({kStatus, 1, true});
        EXPECT_GT(block.process(chain, memory), 0u);
        return *memory.read<uint8_t>(kStatus);
    }

    GuestMemory memory = virtio::test::make_memory();
    test::TempDir directory;
    std::string base;
    std::string overlay;
};

TEST_F(BlockOverlayTest, RequestsLandInTheOverlayAndQemuAgrees) {
    {
        auto image = make_overlay();
        ASSERT_NE(image, nullptr);
        VirtioBlock block(std::move(image), BlockOptions{});
        // 4 KiB of 0xab at 8 KiB, over the backing file's 0x11.
        ASSERT_TRUE(memory.fill(kData, 4096, 0xab));
        EXPECT_EQ(execute(block, kBlockRequestOut, 16, 4096, false), kBlockStatusOk);
        // 64 KiB of zeroes at 512 KiB, also over 0x11.
        ASSERT_TRUE(memory.write(kData, BlockSegment{1024, 128, 0}));
        EXPECT_EQ(execute(block, kBlockRequestWriteZeroes, 0, 16, false), kBlockStatusOk);
        // Reading back 8 KiB at 4 KiB sees backing, then our write.
        ASSERT_TRUE(memory.fill(kData, 8192, 0));
        EXPECT_EQ(execute(block, kBlockRequestIn, 8, 8192, true), kBlockStatusOk);
        EXPECT_EQ(*memory.read<uint8_t>(kData), 0x11);
        EXPECT_EQ(*memory.read<uint8_t>(kData + 4096), 0xab);
        EXPECT_EQ(execute(block, kBlockRequestFlush, 0, 0, false), kBlockStatusOk);
        // A write past the 4 MiB end must fail and leave the image alone.
        EXPECT_EQ(execute(block, kBlockRequestOut, 8192, 512, false), kBlockStatusIoError);
    }
    auto check = test::run("qemu-img check -q " + test::quote(overlay));
    EXPECT_EQ(check.exit_code, 0) << check.output;
    auto verify = test::run(
        "qemu-io -r -c 'read -P 0x11 0 8k' -c 'read -P 0xab 8k 4k' "
        "-c 'read -P 0x11 12k 500k' -c 'read -P 0 512k 64k' "
        "-c 'read -P 0x11 576k 448k' -c 'read -P 0 1M 3M' " +
        test::quote(overlay));
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    EXPECT_EQ(verify.output.find("Pattern verification failed"), std::string::npos)
        << verify.output;
}

}  // namespace
}  // namespace pv::vmm
