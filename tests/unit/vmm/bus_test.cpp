#include "vmm/bus/bus.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace pv::vmm {
namespace {

struct RecordingDevice : BusDevice {
    std::vector<std::pair<uint64_t, size_t>> reads, writes;
    void read(uint64_t offset, std::span<uint8_t> data) override {
        reads.emplace_back(offset, data.size());
        std::fill(data.begin(), data.end(), 0x11);
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        writes.emplace_back(offset, data.size());
    }
};

TEST(Bus, DispatchesWithOffsetFromTheDeviceBase) {
    Bus bus;
    auto device = std::make_shared<RecordingDevice>();
    ASSERT_TRUE(bus.insert(device, 0x3f8, 8));
    uint8_t byte = 0;
    EXPECT_TRUE(bus.write(0x3fd, {&byte, 1}));
    uint8_t word[4];
    EXPECT_TRUE(bus.read(0x3f8, word));
    ASSERT_EQ(device->writes.size(), 1u);
    EXPECT_EQ(device->writes[0].first, 5u);
    ASSERT_EQ(device->reads.size(), 1u);
    EXPECT_EQ(device->reads[0], (std::pair<uint64_t, size_t>{0, 4}));
    EXPECT_EQ(word[3], 0x11);
}

TEST(Bus, UnclaimedAccessesReadAllOnes) {
    Bus bus;
    auto device = std::make_shared<RecordingDevice>();
    ASSERT_TRUE(bus.insert(device, 0x1000, 0x100));
    uint8_t data[4] = {};
    EXPECT_FALSE(bus.read(0xfff, data)) << "below";
    EXPECT_EQ(data[0], 0xff);
    EXPECT_FALSE(bus.read(0x10fe, data)) << "straddles the end";
    EXPECT_FALSE(bus.read(0x1100, data)) << "just past";
    EXPECT_FALSE(bus.write(UINT64_MAX - 1, data)) << "wraps";
    EXPECT_TRUE(device->reads.empty());
}

TEST(Bus, OverlapsAndEmptyRangesAreRefused) {
    Bus bus;
    auto device = std::make_shared<RecordingDevice>();
    ASSERT_TRUE(bus.insert(device, 0x100, 0x10));
    EXPECT_FALSE(bus.insert(device, 0x10f, 1));
    EXPECT_FALSE(bus.insert(device, 0xf0, 0x11));
    EXPECT_FALSE(bus.insert(device, 0x0, 0x1000));
    EXPECT_TRUE(bus.insert(device, 0x110, 1));
    EXPECT_TRUE(bus.insert(device, 0xff, 1));
    EXPECT_FALSE(bus.insert(device, 0x200, 0));
    EXPECT_FALSE(bus.insert(device, UINT64_MAX, 2));
    EXPECT_FALSE(bus.insert(nullptr, 0x300, 1));
}

}  // namespace
}  // namespace pv::vmm
