#include "vmm/memory/guest_memory.hpp"

#include <gtest/gtest.h>

#include "vmm/boot/layout.hpp"

namespace pv::vmm {
namespace {

TEST(GuestMemory, SliceInsideRegionSucceedsAndEdgesAreExact) {
    auto memory = GuestMemory::create({{0, 0x10000}});
    ASSERT_TRUE(memory) << memory.error().message();
    EXPECT_TRUE(memory->slice(0, 0x10000));
    EXPECT_TRUE(memory->slice(0xfff8, 8));
    EXPECT_TRUE(memory->slice(0x10000, 0));
    EXPECT_FALSE(memory->slice(0xfff9, 8));
    EXPECT_FALSE(memory->slice(0x10000, 1));
}

TEST(GuestMemory, OverflowingRangesAreRejected) {
    auto memory = GuestMemory::create({{0, 0x10000}});
    ASSERT_TRUE(memory);
    EXPECT_FALSE(memory->slice(UINT64_MAX, 2));
    EXPECT_FALSE(memory->slice(8, UINT64_MAX));
    EXPECT_FALSE(memory->read<uint64_t>(UINT64_MAX - 3));
}

TEST(GuestMemory, ReadBackWhatWasWritten) {
    auto memory = GuestMemory::create({{0, 0x10000}});
    ASSERT_TRUE(memory);
    ASSERT_TRUE(memory->write<uint32_t>(0x1234, 0xdeadbeef));
    EXPECT_EQ(*memory->read<uint32_t>(0x1234), 0xdeadbeefu);
    EXPECT_EQ(*memory->read<uint8_t>(0x1234), 0xef);
}

TEST(GuestMemory, AccessMayNotSpanTwoRegions) {
    auto memory = GuestMemory::create({{0, 0x1000}, {0x1000, 0x1000}});
    ASSERT_TRUE(memory);
    EXPECT_TRUE(memory->slice(0xff8, 8));
    EXPECT_FALSE(memory->slice(0xffc, 8));
    EXPECT_TRUE(memory->slice(0x1000, 8));
}

TEST(GuestMemory, BadLayoutsAreRefused) {
    EXPECT_FALSE(GuestMemory::create({}));
    EXPECT_FALSE(GuestMemory::create({{0, 0}}));
    EXPECT_FALSE(GuestMemory::create({{0, 100}}));
    EXPECT_FALSE(GuestMemory::create({{0, 0x2000}, {0x1000, 0x1000}}));
    EXPECT_FALSE(GuestMemory::create({{UINT64_MAX - 0xfff, 0x2000}}));
}

TEST(GuestMemory, LargeMemorySplitsAroundTheMmioGap) {
    auto regions = layout::ram_regions(4 * layout::kGiB);
    ASSERT_EQ(regions.size(), 2u);
    EXPECT_EQ(regions[0].guest_address, 0u);
    EXPECT_EQ(regions[0].size, layout::kMmioGapStart);
    EXPECT_EQ(regions[1].guest_address, 4 * layout::kGiB);
    EXPECT_EQ(regions[0].size + regions[1].size, 4 * layout::kGiB);
    // MAP_NORESERVE: mapping 4 GiB costs nothing until touched.
    auto memory = GuestMemory::create(regions);
    ASSERT_TRUE(memory);
    EXPECT_FALSE(memory->slice(layout::kMmioGapStart, 1));
    EXPECT_TRUE(memory->slice(4 * layout::kGiB, 1));
    EXPECT_LT(memory->resident_bytes(), 1 * layout::kMiB);
}

}  // namespace
}  // namespace pv::vmm
