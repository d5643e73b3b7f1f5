#include "vmm/boot/boot_params.hpp"

#include <gtest/gtest.h>

#include "test_files.hpp"

#include <memory>

#include "vmm/boot/layout.hpp"

namespace pv::vmm::boot {
namespace {

using test::copy;

TEST(E820, MapOf128MiBHasBaseMemoryReservedHoleAndHighRam) {
    auto params = std::make_unique<BootParams>();
    ASSERT_TRUE(fill_e820(*params, 128 * layout::kMiB));
    ASSERT_EQ(copy(params->e820_entries), 3);
    EXPECT_EQ(copy(params->e820_table[0].address), 0u);
    EXPECT_EQ(copy(params->e820_table[0].size), 0x9fc00u);
    EXPECT_EQ(copy(params->e820_table[0].type), kE820Ram);
    EXPECT_EQ(copy(params->e820_table[1].address), 0x9fc00u);
    EXPECT_EQ(copy(params->e820_table[1].type), kE820Reserved);
    EXPECT_EQ(copy(params->e820_table[1].address) + copy(params->e820_table[1].size), 0x100000u);
    EXPECT_EQ(copy(params->e820_table[2].address), 0x100000u);
    EXPECT_EQ(copy(params->e820_table[2].address) + copy(params->e820_table[2].size),
              128 * layout::kMiB);
}

TEST(E820, MemoryAboveTheGapContinuesAt4GiB) {
    auto params = std::make_unique<BootParams>();
    ASSERT_TRUE(fill_e820(*params, 6 * layout::kGiB));
    ASSERT_EQ(copy(params->e820_entries), 4);
    EXPECT_EQ(copy(params->e820_table[2].address) + copy(params->e820_table[2].size),
              layout::kMmioGapStart);
    EXPECT_EQ(copy(params->e820_table[3].address), 4 * layout::kGiB);
    EXPECT_EQ(copy(params->e820_table[3].size), 6 * layout::kGiB - layout::kMmioGapStart);
}

TEST(E820, TooLittleMemoryAndFullTableAreErrors) {
    auto params = std::make_unique<BootParams>();
    EXPECT_FALSE(fill_e820(*params, 8 * layout::kMiB));
    for (size_t index = 0; index < kE820MaxEntries; ++index)
        ASSERT_TRUE(add_e820_entry(*params, index * 0x1000, 0x1000, kE820Ram));
    EXPECT_FALSE(add_e820_entry(*params, 0x1000000, 0x1000, kE820Ram));
    auto fresh = std::make_unique<BootParams>();
    EXPECT_FALSE(add_e820_entry(*fresh, UINT64_MAX, 2, kE820Ram));
    EXPECT_FALSE(add_e820_entry(*fresh, 0, 0, kE820Ram));
}

TEST(Cmdline, LimitExcludesTheTerminatingNul) {
    EXPECT_TRUE(check_cmdline("console=ttyS0", 13));
    EXPECT_FALSE(check_cmdline("console=ttyS0", 12));
    EXPECT_FALSE(check_cmdline(std::string_view("a\0b", 3), 100));
    EXPECT_FALSE(check_cmdline(std::string(layout::kCmdlineMaxSize, 'x'), UINT32_MAX));
}

}  // namespace
}  // namespace pv::vmm::boot
