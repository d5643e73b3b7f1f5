#include "vmm/devices/block/block.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "ring_builder.hpp"
#include "vmm/devices/block/block_request.hpp"

namespace pv::vmm {
namespace {

using virtio::Buffer;
using virtio::DescriptorChain;
using virtio::test::kDataArea;

constexpr uint64_t kHeader = kDataArea;
constexpr uint64_t kStatus = kDataArea + 0x800;
constexpr uint64_t kData = kDataArea + 0x1000;

// An in-memory disk that counts flushes and can be told to fail.
class MemoryDisk final : public img::BlockDevice {
  public:
    explicit MemoryDisk(uint64_t size, bool read_only = false)
        : m_bytes(size), m_read_only(read_only) {}
    uint64_t size() const override { return m_bytes.size(); }
    const std::string& name() const override { return m_name; }
    bool read_only() const override { return m_read_only; }
    Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override {
        PV_TRY(check("read", offset, buffer.size()));
        std::memcpy(buffer.data(), m_bytes.data() + offset, buffer.size());
        return {};
    }
    Result<void> write_at(std::span<const std::byte> buffer, uint64_t offset) override {
        PV_TRY(check("write", offset, buffer.size()));
        std::memcpy(m_bytes.data() + offset, buffer.data(), buffer.size());
        return {};
    }
    Result<void> flush() override {
        if (failing)
            return fail(make_error("flush memory disk", "told to fail"));
        ++flushes;
        return {};
    }
    std::vector<std::byte> m_bytes;
    bool failing = false;
    int flushes = 0;

  private:
    Result<void> check(const char* verb, uint64_t offset, uint64_t length) {
        if (failing)
            return fail(make_error(verb, "told to fail"));
        return check_range(verb, offset, length);
    }
    std::string m_name = "memory";
    bool m_read_only;
};

class BlockTest : public ::testing::Test {
  protected:
    GuestMemory memory = virtio::test::make_memory();
    MemoryDisk* disk = nullptr;

    VirtioBlock make_block(Access access = Access::ReadWrite, uint64_t size = 1 << 20) {
        auto owned = std::make_unique<MemoryDisk>(size);
        disk = owned.get();
        return VirtioBlock(std::move(owned), BlockOptions{access, "disk-serial-01", 256});
    }
    // header, one data buffer of LENGTH bytes at kData, status.
    DescriptorChain request(uint32_t type, uint64_t sector, uint32_t length, bool data_writable) {
        EXPECT_TRUE(memory.write(kHeader, BlockRequestHeader{type, 0, sector}));
        EXPECT_TRUE(memory.write<uint8_t>(kStatus, 0xff));
        DescriptorChain chain{0, {{kHeader, 16, false}}};
        if (length > 0)
            chain.buffers.push_back({kData, length, data_writable});
        chain.buffers.push_back({kStatus, 1, true});
        return chain;
    }
    uint8_t status() { return *memory.read<uint8_t>(kStatus); }
    // The device's counter of FAULT, expected to be the only one that moved.
    static uint64_t only(const VirtioBlock& block, BlockFault fault) {
        const auto counts = block.fault_counts();
        for (size_t other = 0; other < counts.size(); ++other) {
            if (other != static_cast<size_t>(fault)) {
                EXPECT_EQ(counts[other], 0u) << fault_name(static_cast<BlockFault>(other));
            }
        }
        return counts[static_cast<size_t>(fault)];
    }
};

TEST_F(BlockTest, WriteThenReadRoundTrips) {
    VirtioBlock block = make_block();
    ASSERT_TRUE(memory.fill(kData, 1024, 0x5a));
    EXPECT_EQ(block.process(request(kBlockRequestOut, 3, 1024, false), memory), 1u);
    EXPECT_EQ(status(), kBlockStatusOk);
    EXPECT_EQ(disk->m_bytes[3 * 512], std::byte{0x5a});
    ASSERT_TRUE(memory.fill(kData, 1024, 0));
    EXPECT_EQ(block.process(request(kBlockRequestIn, 3, 1024, true), memory), 1025u);
    EXPECT_EQ(status(), kBlockStatusOk);
    EXPECT_EQ(*memory.read<uint8_t>(kData + 1023), 0x5a);
    EXPECT_EQ(only(block, BlockFault::BackendError), 0u);
}

TEST_F(BlockTest, ReadOnlyRefusesWrites) {
    VirtioBlock block = make_block(Access::ReadOnly);
    ASSERT_TRUE(memory.fill(kData, 512, 0x5a));
    EXPECT_EQ(block.process(request(kBlockRequestOut, 0, 512, false), memory), 1u);
    EXPECT_EQ(status(), kBlockStatusIoError);
    EXPECT_EQ(only(block, BlockFault::ReadOnlyDevice), 1u);
    EXPECT_EQ(disk->m_bytes[0], std::byte{0});
    EXPECT_TRUE(block.device_features() & kBlockFeatureReadOnly);
}

TEST_F(BlockTest, RangePastCapacityIsIoError) {
    VirtioBlock block = make_block();
    (void)block.process(request(kBlockRequestIn, 2047, 1024, true), memory);
    EXPECT_EQ(status(), kBlockStatusIoError);
    EXPECT_EQ(only(block, BlockFault::OutOfRange), 1u);
}

TEST_F(BlockTest, SectorOverflowIsIoError) {
    VirtioBlock block = make_block();
    (void)block.process(request(kBlockRequestIn, UINT64_MAX / 256, 512, true), memory);
    EXPECT_EQ(status(), kBlockStatusIoError);
    EXPECT_EQ(only(block, BlockFault::OutOfRange), 1u);
}

TEST_F(BlockTest, PartialSectorIsIoError) {
    VirtioBlock block = make_block();
    (void)block.process(request(kBlockRequestIn, 0, 100, true), memory);
    EXPECT_EQ(status(), kBlockStatusIoError);
    EXPECT_EQ(only(block, BlockFault::PartialSector), 1u);
}

TEST_F(BlockTest, WrongDataDirectionIsIoError) {
    VirtioBlock block = make_block();
    (void)block.process(request(kBlockRequestIn, 0, 512, false), memory);
    EXPECT_EQ(status(), kBlockStatusIoError);
    EXPECT_EQ(only(block, BlockFault::WrongDirection), 1u);
}

TEST_F(BlockTest, BackendFailureIsIoError) {
    VirtioBlock block = make_block();
    disk->failing = true;
    (void)block.process(request(kBlockRequestIn, 0, 512, true), memory);
    EXPECT_EQ(status(), kBlockStatusIoError);
    (void)block.process(request(kBlockRequestFlush, 0, 0, false), memory);
    EXPECT_EQ(status(), kBlockStatusIoError);
    EXPECT_EQ(only(block, BlockFault::BackendError), 2u);
}

TEST_F(BlockTest, UnknownTypeIsUnsupported) {
    VirtioBlock block = make_block();
    (void)block.process(request(99, 0, 0, false), memory);
    EXPECT_EQ(status(), kBlockStatusUnsupported);
    EXPECT_EQ(only(block, BlockFault::UnsupportedType), 1u);
}

TEST_F(BlockTest, FlushReachesTheBackend) {
    VirtioBlock block = make_block();
    (void)block.process(request(kBlockRequestFlush, 0, 0, false), memory);
    EXPECT_EQ(status(), kBlockStatusOk);
    EXPECT_EQ(disk->flushes, 1);
}

TEST_F(BlockTest, GetIdWritesTwentyBytes) {
    VirtioBlock block = make_block();
    ASSERT_TRUE(memory.fill(kData, 32, 0xee));
    EXPECT_EQ(block.process(request(kBlockRequestGetId, 0, 32, true), memory), 21u);
    uint8_t id[21] = {};
    ASSERT_TRUE(memory.read_bytes(kData, std::span(id, 20)));
    EXPECT_STREQ(reinterpret_cast<const char*>(id), "disk-serial-01");
    EXPECT_EQ(*memory.read<uint8_t>(kData + 20), 0xee);
}

TEST_F(BlockTest, WriteZeroesClearsTheRange) {
    VirtioBlock block = make_block();
    std::fill(disk->m_bytes.begin(), disk->m_bytes.end(), std::byte{0x77});
    ASSERT_TRUE(memory.write(kData, BlockSegment{4, 2, 0}));
    (void)block.process(request(kBlockRequestWriteZeroes, 0, 16, false), memory);
    EXPECT_EQ(status(), kBlockStatusOk);
    EXPECT_EQ(disk->m_bytes[4 * 512], std::byte{0});
    EXPECT_EQ(disk->m_bytes[6 * 512 - 1], std::byte{0});
    EXPECT_EQ(disk->m_bytes[6 * 512], std::byte{0x77});
}

TEST_F(BlockTest, DiscardWithUnmapFlagIsUnsupported) {
    VirtioBlock block = make_block();
    ASSERT_TRUE(memory.write(kData, BlockSegment{0, 8, 1}));
    (void)block.process(request(kBlockRequestDiscard, 0, 16, false), memory);
    EXPECT_EQ(status(), kBlockStatusUnsupported);
    EXPECT_EQ(only(block, BlockFault::UnsupportedFlags), 1u);
}

TEST_F(BlockTest, DiscardPastCapacityIsIoError) {
    VirtioBlock block = make_block();
    ASSERT_TRUE(memory.write(kData, BlockSegment{2040, 16, 0}));
    (void)block.process(request(kBlockRequestDiscard, 0, 16, false), memory);
    EXPECT_EQ(status(), kBlockStatusIoError);
    EXPECT_EQ(only(block, BlockFault::OutOfRange), 1u);
}

TEST_F(BlockTest, MoreSegmentsThanOfferedIsABadSegmentList) {
    VirtioBlock block = make_block();
    (void)block.process(request(kBlockRequestDiscard, 0, 17 * 16, false), memory);
    EXPECT_EQ(status(), kBlockStatusIoError);
    EXPECT_EQ(only(block, BlockFault::BadSegmentList), 1u);
}

TEST_F(BlockTest, ChainWithoutWritableStatusGetsNoStatus) {
    VirtioBlock block = make_block();
    DescriptorChain chain = request(kBlockRequestIn, 0, 512, true);
    chain.buffers.back().device_writable = false;
    EXPECT_EQ(block.process(chain, memory), 0u);
    EXPECT_EQ(status(), 0xff);
    EXPECT_EQ(only(block, BlockFault::NoStatusBuffer), 1u);
}

TEST_F(BlockTest, ShortHeaderIsIoError) {
    VirtioBlock block = make_block();
    DescriptorChain chain = request(kBlockRequestIn, 0, 0, true);
    chain.buffers.front().length = 8;
    EXPECT_EQ(block.process(chain, memory), 1u);
    EXPECT_EQ(status(), kBlockStatusIoError);
    EXPECT_EQ(only(block, BlockFault::BadHeader), 1u);
}

TEST_F(BlockTest, ConfigSpaceDescribesTheDisk) {
    VirtioBlock block = make_block();
    uint64_t capacity = 0;
    block.read_config(0, std::span(reinterpret_cast<uint8_t*>(&capacity), 8));
    EXPECT_EQ(capacity, (1u << 20) / 512);
    uint32_t seg_max = 0;
    block.read_config(12, std::span(reinterpret_cast<uint8_t*>(&seg_max), 4));
    EXPECT_EQ(seg_max, 254u);
    uint32_t block_size = 0;
    block.read_config(20, std::span(reinterpret_cast<uint8_t*>(&block_size), 4));
    EXPECT_EQ(block_size, 512u);
    const uint64_t features = block.device_features();
    EXPECT_TRUE(features & kBlockFeatureSegmentMax);
    EXPECT_TRUE(features & kBlockFeatureBlockSize);
    EXPECT_TRUE(features & kBlockFeatureFlush);
    EXPECT_FALSE(features & kBlockFeatureReadOnly);
}

class CountingInterrupt final : public virtio::Interrupt {
  public:
    void signal_used_buffer() override { ++used; }
    void signal_device_error() override { ++errors; }
    int used = 0;
    int errors = 0;
};

TEST_F(BlockTest, MalformedChainIsReturnedWithZeroLengthAndNextOneServed) {
    VirtioBlock block = make_block();
    virtio::test::RingBuilder ring(memory, virtio::test::default_layout());
    ring.set_descriptor(0, {kHeader, 16, virtio::kDescriptorNext, 0});  // loops onto itself
    (void)request(kBlockRequestFlush, 0, 0, false);
    ring.set_descriptor(1, {kHeader, 16, virtio::kDescriptorNext, 2});
    ring.set_descriptor(2, {kStatus, 1, virtio::kDescriptorWrite, 0});
    ring.post(0);
    ring.post(1);
    auto queue = virtio::Queue::create(memory, virtio::test::default_layout(), 256);
    ASSERT_TRUE(queue);
    std::vector<virtio::Queue> queues;
    queues.push_back(std::move(*queue));
    CountingInterrupt interrupt;
    ASSERT_TRUE(block.activate(0, std::move(queues), interrupt));
    block.queue_notify(0);
    EXPECT_EQ(ring.used_index(), 2);
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(ring.used_element(1), std::make_pair(1u, 1u));
    EXPECT_EQ(status(), kBlockStatusOk);
    EXPECT_EQ(interrupt.used, 1);
    EXPECT_EQ(interrupt.errors, 0);
}

TEST_F(BlockTest, HeadOutsideTheTableIsNotReturned) {
    VirtioBlock block = make_block();
    virtio::test::RingBuilder ring(memory, virtio::test::default_layout());
    (void)request(kBlockRequestFlush, 0, 0, false);
    ring.set_descriptor(1, {kHeader, 16, virtio::kDescriptorNext, 2});
    ring.set_descriptor(2, {kStatus, 1, virtio::kDescriptorWrite, 0});
    ring.post(16);  // the table has entries 0..15
    ring.post(1);
    auto queue = virtio::Queue::create(memory, virtio::test::default_layout(), 256);
    ASSERT_TRUE(queue);
    std::vector<virtio::Queue> queues;
    queues.push_back(std::move(*queue));
    CountingInterrupt interrupt;
    ASSERT_TRUE(block.activate(0, std::move(queues), interrupt));
    block.queue_notify(0);
    EXPECT_EQ(ring.used_index(), 1);
    EXPECT_EQ(ring.used_element(0), std::make_pair(1u, 1u));
}

TEST_F(BlockTest, AvailableIndexJumpAsksForReset) {
    VirtioBlock block = make_block();
    virtio::test::RingBuilder ring(memory, virtio::test::default_layout());
    ring.set_available_index(100);
    auto queue = virtio::Queue::create(memory, virtio::test::default_layout(), 256);
    ASSERT_TRUE(queue);
    std::vector<virtio::Queue> queues;
    queues.push_back(std::move(*queue));
    CountingInterrupt interrupt;
    ASSERT_TRUE(block.activate(0, std::move(queues), interrupt));
    block.queue_notify(0);
    EXPECT_EQ(interrupt.errors, 1);
    EXPECT_EQ(ring.used_index(), 0);
}

}  // namespace
}  // namespace pv::vmm
