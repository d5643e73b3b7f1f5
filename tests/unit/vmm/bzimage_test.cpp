#include "vmm/boot/bzimage.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "test_files.hpp"
#include "vmm/boot/kernel_loader.hpp"

namespace pv::vmm::boot {
namespace {

using test::copy;

// A file with a valid 2.15 setup header, 4 setup sectors and 4 KiB of
// "protected-mode code".
std::vector<uint8_t> synthetic_bzimage(uint8_t setup_sects = 4) {
    std::vector<uint8_t> file((setup_sects + 1) * 512 + 4096, 0);
    SetupHeader header{};
    header.setup_sects = setup_sects;
    header.boot_flag = kBootFlagMagic;
    header.jump = 0x66eb;  // the kernel's "jmp" whose offset ends the header
    header.header = kHdrSMagic;
    header.version = 0x020f;
    header.loadflags = kLoadedHigh;
    header.syssize = 4096 / 16;
    header.initrd_addr_max = 0x7fffffff;
    header.kernel_alignment = 0x200000;
    header.xloadflags = kXlfKernel64 | kXlfCanBeLoadedAbove4G;
    header.cmdline_size = 2047;
    header.init_size = 0x100000;
    std::memcpy(file.data() + 0x1f1, &header, sizeof(header));
    return file;
}

SetupHeader& header_of(std::vector<uint8_t>& file) {
    return *reinterpret_cast<SetupHeader*>(file.data() + 0x1f1);
}

TEST(BzImage, ValidHeaderSplitsSetupAndKernel) {
    auto file = synthetic_bzimage();
    ASSERT_TRUE(looks_like_bzimage(file));
    auto image = parse_bzimage(file);
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->kernel_file_offset, 5u * 512);
    EXPECT_EQ(image->kernel_size, 4096u);
    EXPECT_EQ(copy(image->header.version), 0x020f);
}

TEST(BzImage, ZeroSetupSectorsMeansFour) {
    auto file = synthetic_bzimage(4);
    header_of(file).setup_sects = 0;
    auto image = parse_bzimage(file);
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->kernel_file_offset, 5u * 512);
}

TEST(BzImage, EachBrokenFieldIsRefused) {
    auto check = [](auto mutate, const char* why) {
        auto file = synthetic_bzimage();
        mutate(header_of(file));
        auto image = parse_bzimage(file);
        EXPECT_FALSE(image) << why;
    };
    check([](SetupHeader& h) { h.boot_flag = 0; }, "boot_flag");
    check([](SetupHeader& h) { h.header = 0x12345678; }, "HdrS");
    check([](SetupHeader& h) { h.version = 0x0205; }, "protocol 2.05");
    check([](SetupHeader& h) { h.loadflags = 0; }, "zImage (not loaded high)");
    check([](SetupHeader& h) { h.xloadflags = 0; }, "no 64-bit entry");
    check([](SetupHeader& h) { h.setup_sects = 200; }, "setup beyond file");
    check([](SetupHeader& h) { h.syssize = 0x10000; }, "syssize beyond file");
    check([](SetupHeader& h) { h.kernel_alignment = 0x300000; }, "alignment not power of two");
}

TEST(BzImage, PrefAddressPlusInitSizeThatWrapsIsRefusedByTheLoader) {
    // A non-relocatable kernel runs at pref_address and needs init_size
    // bytes there; a sum past 2^64 once wrapped to a small footprint that
    // passed the RAM check (caught by tests/fuzz/bzimage_loader).
    auto file = synthetic_bzimage();
    header_of(file).relocatable_kernel = 0;
    header_of(file).pref_address = 0xffffffffff000000;
    header_of(file).init_size = 0x2000000;
    auto memory = GuestMemory::create({{0, 64 << 20}});
    ASSERT_TRUE(memory);
    auto loaded = load_kernel(*memory, {file, {}, ""});
    ASSERT_FALSE(loaded);
    EXPECT_NE(loaded.error().message().find("overflows"), std::string::npos)
        << loaded.error().message();
}

TEST(BzImage, TruncatedFilesAreRefused) {
    auto file = synthetic_bzimage();
    for (size_t length : {size_t{0}, size_t{0x1f0}, size_t{0x205}, size_t{0x260}, size_t{5 * 512}})
        EXPECT_FALSE(parse_bzimage(std::span<const uint8_t>(file).first(length))) << length;
}

TEST(BzImage, RealKernelHasA64BitEntryAndModernProtocol) {
    auto path = test::real_bzimage_path();
    if (!path)
        GTEST_SKIP() << "no real bzImage: scripts/images kernel not built and Debian's "
                        "linux-image-cloud-amd64 could not be fetched";
    auto file = test::read_whole_file(*path);
    ASSERT_GT(file.size(), 1u << 20) << *path;
    auto image = parse_bzimage(file);
    ASSERT_TRUE(image) << *path << ": " << image.error().message();
    EXPECT_GE(copy(image->header.version), 0x020f) << "Linux 6.x speaks boot protocol >= 2.15";
    EXPECT_TRUE(copy(image->header.xloadflags) & kXlfKernel64);
    EXPECT_GE(copy(image->header.cmdline_size), 255u);
    EXPECT_GT(copy(image->header.init_size), image->kernel_size);
    EXPECT_EQ(copy(image->header.code32_start), 0x100000u);
}

}  // namespace
}  // namespace pv::vmm::boot
