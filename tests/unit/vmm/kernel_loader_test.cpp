#include "vmm/boot/kernel_loader.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "test_files.hpp"
#include "vmm/boot/bzimage.hpp"
#include "vmm/boot/layout.hpp"

namespace pv::vmm::boot {
namespace {

using test::copy;

std::unique_ptr<BootParams> read_params(const GuestMemory& memory) {
    auto params = std::make_unique<BootParams>();
    EXPECT_TRUE(memory.read_bytes(layout::kBootParamsAddress,
                                  {reinterpret_cast<uint8_t*>(params.get()), sizeof(BootParams)}));
    return params;
}

std::string read_cmdline(const GuestMemory& memory, uint64_t address) {
    std::string text;
    for (;;) {
        auto byte = memory.read<char>(address++);
        if (!byte || *byte == 0)
            return text;
        text.push_back(*byte);
    }
}

TEST(KernelLoader, ElfTestGuestGetsZeroPageCmdlineAndE820) {
    auto kernel = test::read_whole_file(test::testguest_path());
    ASSERT_FALSE(kernel.empty());
    auto memory = GuestMemory::create(layout::ram_regions(128 * layout::kMiB));
    ASSERT_TRUE(memory);
    auto loaded = load_kernel(*memory, {kernel, {}, "console=ttyS0 reboot=k"});
    ASSERT_TRUE(loaded) << loaded.error().message();
    EXPECT_EQ(loaded->format, KernelFormat::Elf);
    EXPECT_EQ(loaded->entry, 0x100000u);
    auto params = read_params(*memory);
    EXPECT_EQ(copy(params->hdr.boot_flag), 0xaa55);
    EXPECT_EQ(copy(params->hdr.header), kHdrSMagic);
    EXPECT_EQ(copy(params->hdr.type_of_loader), 0xff);
    EXPECT_TRUE(copy(params->hdr.loadflags) & kCanUseHeap);
    EXPECT_EQ(copy(params->hdr.cmd_line_ptr), layout::kCmdlineAddress);
    EXPECT_EQ(read_cmdline(*memory, copy(params->hdr.cmd_line_ptr)), "console=ttyS0 reboot=k");
    EXPECT_EQ(copy(params->e820_entries), 3);
    EXPECT_EQ(copy(params->hdr.ramdisk_image), 0u);
}

TEST(KernelLoader, InitrdIsPageAlignedAtTheTopBelowItsCeiling) {
    auto kernel = test::read_whole_file(test::testguest_path());
    ASSERT_FALSE(kernel.empty());
    auto memory = GuestMemory::create(layout::ram_regions(64 * layout::kMiB));
    ASSERT_TRUE(memory);
    std::vector<uint8_t> initrd(10000, 0x5a);
    auto loaded = load_kernel(*memory, {kernel, initrd, ""});
    ASSERT_TRUE(loaded) << loaded.error().message();
    EXPECT_EQ(loaded->initrd_address % 4096, 0u);
    EXPECT_LE(loaded->initrd_address + initrd.size(), 64 * layout::kMiB);
    EXPECT_GT(loaded->initrd_address + 4096 + initrd.size(), 64 * layout::kMiB)
        << "as high as fits";
    EXPECT_GE(loaded->initrd_address, loaded->kernel_end);
    auto params = read_params(*memory);
    EXPECT_EQ(copy(params->hdr.ramdisk_image), loaded->initrd_address);
    EXPECT_EQ(copy(params->hdr.ramdisk_size), initrd.size());
    EXPECT_EQ(*memory->read<uint8_t>(loaded->initrd_address + 9999), 0x5a);
}

TEST(KernelLoader, PlaceInitrdHonoursCeilingAndFloor) {
    EXPECT_EQ(*place_initrd(0x1000, 0x200000, 0x8000000, 0x37ffffff), 0x7fff000u);
    EXPECT_EQ(*place_initrd(0x1001, 0x200000, 0x8000000, 0x37ffffff), 0x7ffe000u);
    EXPECT_EQ(*place_initrd(0x1000, 0x200000, 0x80000000, 0x37ffffff), 0x37fff000u);
    EXPECT_FALSE(place_initrd(0x8000000, 0x200000, 0x8000000, 0x37ffffff)) << "above floor fails";
    EXPECT_FALSE(place_initrd(UINT64_MAX, 0, 0x8000000, 0x37ffffff));
    EXPECT_FALSE(place_initrd(0, 0, 0x8000000, 0x37ffffff));
}

TEST(KernelLoader, RefusesUnknownFormatsAndLongCmdlines) {
    auto memory = GuestMemory::create(layout::ram_regions(64 * layout::kMiB));
    ASSERT_TRUE(memory);
    std::vector<uint8_t> junk(8192, 0x90);
    EXPECT_FALSE(load_kernel(*memory, {junk, {}, ""}));
    auto kernel = test::read_whole_file(test::testguest_path());
    ASSERT_FALSE(kernel.empty());
    EXPECT_FALSE(load_kernel(*memory, {kernel, {}, std::string(3000, 'x')}));
}

TEST(KernelLoader, RealBzImageLoadsAt1MiBWithEntryPlus0x200) {
    auto path = test::real_bzimage_path();
    if (!path)
        GTEST_SKIP() << "no real bzImage available";
    auto kernel = test::read_whole_file(*path);
    auto memory = GuestMemory::create(layout::ram_regions(512 * layout::kMiB));
    ASSERT_TRUE(memory);
    std::vector<uint8_t> initrd(1 << 20, 0x42);
    auto loaded = load_kernel(*memory, {kernel, initrd, "console=ttyS0 panic=-1"});
    ASSERT_TRUE(loaded) << loaded.error().message();
    EXPECT_EQ(loaded->format, KernelFormat::BzImage);
    EXPECT_EQ(loaded->entry, 0x100200u);
    auto image = parse_bzimage(kernel);
    ASSERT_TRUE(image);
    std::vector<uint8_t> start(4096);
    ASSERT_TRUE(memory->read_bytes(0x100000, start));
    EXPECT_EQ(std::memcmp(start.data(), kernel.data() + image->kernel_file_offset, start.size()),
              0);
    auto params = read_params(*memory);
    EXPECT_EQ(copy(params->hdr.header), kHdrSMagic);
    EXPECT_EQ(copy(params->hdr.version), copy(image->header.version));
    EXPECT_EQ(copy(params->hdr.type_of_loader), 0xff);
    EXPECT_EQ(copy(params->hdr.loadflags) & (kLoadedHigh | kCanUseHeap), kLoadedHigh | kCanUseHeap);
    EXPECT_LE(loaded->initrd_address + initrd.size() - 1, copy(params->hdr.initrd_addr_max));
    EXPECT_GE(loaded->initrd_address, 0x100000 + uint64_t{copy(params->hdr.init_size)});
    if (!copy(params->hdr.relocatable_kernel)) {
        // It decompresses at pref_address, so the initrd must lie above that.
        EXPECT_GE(loaded->initrd_address,
                  copy(params->hdr.pref_address) + copy(params->hdr.init_size));
    }
    EXPECT_EQ(read_cmdline(*memory, copy(params->hdr.cmd_line_ptr)), "console=ttyS0 panic=-1");
    // Too little RAM for init_size is a clean error, not an overrun.
    auto small = GuestMemory::create(layout::ram_regions(32 * layout::kMiB));
    ASSERT_TRUE(small);
    if (0x100000 + uint64_t{image->header.init_size} > 32 * layout::kMiB) {
        EXPECT_FALSE(load_kernel(*small, {kernel, {}, ""}));
    }
}

}  // namespace
}  // namespace pv::vmm::boot
