#include "vmm/virtio/queue.hpp"

#include <gtest/gtest.h>

#include "ring_builder.hpp"

namespace pv::vmm::virtio {
namespace {

using test::kDataArea;
using test::kDescriptorTable;
using test::kMemorySize;

class QueueTest : public ::testing::Test {
  protected:
    GuestMemory memory = test::make_memory();
    QueueLayout layout = test::default_layout();
    test::RingBuilder ring{memory, layout};

    Queue make_queue() {
        auto queue = Queue::create(memory, layout, 256);
        EXPECT_TRUE(queue) << queue.error().message();
        return std::move(*queue);
    }
    // Posts a chain starting at HEAD and expects popping it to fail with FAULT.
    void expect_fault(uint16_t head, QueueFault fault) {
        ring.post(head);
        Queue queue = make_queue();
        auto popped = queue.pop();
        ASSERT_FALSE(popped) << "chain was accepted";
        EXPECT_EQ(popped.error().fault, fault) << fault_name(popped.error().fault);
        EXPECT_EQ(popped.error().head, head);
        EXPECT_FALSE(popped.error().fatal);
    }
};

TEST_F(QueueTest, WellFormedChainIsReturnedInOrder) {
    ring.set_descriptor(3, {kDataArea, 16, kDescriptorNext, 7});
    ring.set_descriptor(7, {kDataArea + 0x100, 512, kDescriptorNext | kDescriptorWrite, 1});
    ring.set_descriptor(1, {kDataArea + 0x400, 1, kDescriptorWrite, 0});
    ring.post(3);
    Queue queue = make_queue();
    auto popped = queue.pop();
    ASSERT_TRUE(popped && *popped);
    const DescriptorChain& chain = **popped;
    EXPECT_EQ(chain.head, 3);
    ASSERT_EQ(chain.buffers.size(), 3u);
    EXPECT_EQ(chain.buffers[0].address, kDataArea);
    EXPECT_FALSE(chain.buffers[0].device_writable);
    EXPECT_EQ(chain.buffers[1].length, 512u);
    EXPECT_TRUE(chain.buffers[2].device_writable);
    auto empty = queue.pop();
    ASSERT_TRUE(empty);
    EXPECT_FALSE(*empty);
}

TEST_F(QueueTest, AddUsedWritesElementThenIndex) {
    Queue queue = make_queue();
    ASSERT_TRUE(queue.add_used(5, 513));
    EXPECT_EQ(ring.used_index(), 1);
    EXPECT_EQ(ring.used_element(0), std::make_pair(5u, 513u));
}

TEST_F(QueueTest, HeadIndexOutOfRange) {
    expect_fault(16, QueueFault::DescriptorIndexOutOfRange);
}

TEST_F(QueueTest, NextIndexOutOfRange) {
    ring.set_descriptor(0, {kDataArea, 16, kDescriptorNext, 200});
    expect_fault(0, QueueFault::DescriptorIndexOutOfRange);
}

TEST_F(QueueTest, LoopRunsIntoTheLengthLimit) {
    ring.set_descriptor(0, {kDataArea, 16, kDescriptorNext, 1});
    ring.set_descriptor(1, {kDataArea, 16, kDescriptorNext, 0});
    expect_fault(0, QueueFault::ChainTooLong);
}

TEST_F(QueueTest, LoopInsideAnIndirectTableRunsIntoTheLengthLimit) {
    const uint64_t table = kDataArea + 0x1000;
    ring.set_descriptor_at(table, 0, {kDataArea, 16, kDescriptorNext, 1});
    ring.set_descriptor_at(table, 1, {kDataArea, 16, kDescriptorNext, 0});
    ring.set_descriptor(0, {table, 2 * 16, kDescriptorIndirect, 0});
    expect_fault(0, QueueFault::ChainTooLong);
}

TEST_F(QueueTest, IndirectChainLongerThanQueueIsTooLong) {
    // 17 descriptors in the table of a 16-entry queue (§2.7.5.3.1).
    const uint64_t table = kDataArea + 0x1000;
    for (uint32_t i = 0; i < 17; ++i)
        ring.set_descriptor_at(table, i, {kDataArea, 16, kDescriptorNext, uint16_t(i + 1)});
    ring.set_descriptor(0, {table, 17 * 16, kDescriptorIndirect, 0});
    expect_fault(0, QueueFault::ChainTooLong);
}

TEST_F(QueueTest, BufferOutsideMemory) {
    ring.set_descriptor(0, {kMemorySize - 8, 16, 0, 0});
    expect_fault(0, QueueFault::AddressOutsideMemory);
}

TEST_F(QueueTest, AddressPlusLengthOverflows) {
    ring.set_descriptor(0, {UINT64_MAX - 4, 16, 0, 0});
    expect_fault(0, QueueFault::LengthOverflow);
}

TEST_F(QueueTest, IndirectTableIsFollowed) {
    const uint64_t table = kDataArea + 0x1000;
    ring.set_descriptor_at(table, 0, {kDataArea, 16, kDescriptorNext, 1});
    ring.set_descriptor_at(table, 1, {kDataArea + 0x200, 1, kDescriptorWrite, 0});
    ring.set_descriptor(2, {table, 32, kDescriptorIndirect, 0});
    ring.post(2);
    Queue queue = make_queue();
    auto popped = queue.pop();
    ASSERT_TRUE(popped && *popped);
    ASSERT_EQ((*popped)->buffers.size(), 2u);
    EXPECT_EQ((*popped)->head, 2);
    EXPECT_TRUE((*popped)->buffers[1].device_writable);
}

TEST_F(QueueTest, NestedIndirectIsRefused) {
    const uint64_t table = kDataArea + 0x1000;
    ring.set_descriptor_at(table, 0, {table, 16, kDescriptorIndirect, 0});
    ring.set_descriptor(0, {table, 16, kDescriptorIndirect, 0});
    expect_fault(0, QueueFault::NestedIndirect);
}

TEST_F(QueueTest, IndirectLengthNotMultipleOf16) {
    ring.set_descriptor(0, {kDataArea + 0x1000, 24, kDescriptorIndirect, 0});
    expect_fault(0, QueueFault::BadIndirectLength);
}

TEST_F(QueueTest, IndirectTableOutsideMemory) {
    ring.set_descriptor(0, {kMemorySize - 16, 32, kDescriptorIndirect, 0});
    expect_fault(0, QueueFault::AddressOutsideMemory);
}

TEST_F(QueueTest, IndirectWithNextIsRefused) {
    ring.set_descriptor(0, {kDataArea + 0x1000, 16, kDescriptorIndirect | kDescriptorNext, 1});
    expect_fault(0, QueueFault::IndirectWithNext);
}

TEST_F(QueueTest, ReadableAfterWritableIsRefused) {
    ring.set_descriptor(0, {kDataArea, 16, kDescriptorWrite | kDescriptorNext, 1});
    ring.set_descriptor(1, {kDataArea, 16, 0, 0});
    expect_fault(0, QueueFault::ReadableAfterWritable);
}

TEST_F(QueueTest, AvailableIndexJumpIsFatal) {
    Queue queue = make_queue();
    ring.set_available_index(17);  // 17 new entries in a 16-entry ring
    auto popped = queue.pop();
    ASSERT_FALSE(popped);
    EXPECT_EQ(popped.error().fault, QueueFault::AvailableIndexOutOfRange);
    EXPECT_TRUE(popped.error().fatal);
    // The queue stays broken even if the driver repairs the index.
    ring.set_available_index(0);
    EXPECT_FALSE(queue.pop());
}

TEST_F(QueueTest, AvailableIndexGoingBackwardsIsFatal) {
    ring.set_descriptor(0, {kDataArea, 16, 0, 0});
    ring.post(0);
    ring.post(0);
    Queue queue = make_queue();
    ASSERT_TRUE(queue.pop());
    ASSERT_TRUE(queue.pop());
    ring.set_available_index(1);  // behind the two entries already consumed
    auto popped = queue.pop();
    ASSERT_FALSE(popped);
    EXPECT_EQ(popped.error().fault, QueueFault::AvailableIndexOutOfRange);
}

TEST_F(QueueTest, FaultyChainDoesNotStopTheNextOne) {
    ring.set_descriptor(0, {UINT64_MAX, 2, 0, 0});
    ring.set_descriptor(1, {kDataArea, 16, 0, 0});
    ring.post(0);
    ring.post(1);
    Queue queue = make_queue();
    EXPECT_FALSE(queue.pop());
    auto second = queue.pop();
    ASSERT_TRUE(second && *second);
    EXPECT_EQ((*second)->head, 1);
}

TEST(QueueLayoutTest, BadLayoutsAreRefusedWhenEnabled) {
    GuestMemory memory = test::make_memory();
    const QueueLayout good = test::default_layout();
    EXPECT_TRUE(Queue::create(memory, good, 16));
    auto with = [&](auto change) {
        QueueLayout layout = good;
        change(layout);
        return Queue::create(memory, layout, 256).has_value();
    };
    EXPECT_FALSE(with([](QueueLayout& l) { l.size = 0; }));
    EXPECT_FALSE(with([](QueueLayout& l) { l.size = 24; }));  // not a power of 2
    EXPECT_FALSE(Queue::create(memory, good, 8));             // above the device maximum
    EXPECT_FALSE(with([](QueueLayout& l) { l.descriptor_table = kDescriptorTable + 8; }));
    EXPECT_FALSE(with([](QueueLayout& l) { l.available_ring += 1; }));
    EXPECT_FALSE(with([](QueueLayout& l) { l.used_ring += 2; }));
    EXPECT_FALSE(with([](QueueLayout& l) { l.used_ring = kMemorySize - 16; }));
    EXPECT_FALSE(with([](QueueLayout& l) { l.descriptor_table = UINT64_MAX - 15; }));
}

}  // namespace
}  // namespace pv::vmm::virtio
