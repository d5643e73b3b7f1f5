// serve_queue(), the pop/serve/return loop virtio-blk and the vsock TX
// queue share: what the device sees and what goes back to the driver.

#include "vmm/virtio/serve_queue.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "ring_builder.hpp"

namespace pv::vmm::virtio {
namespace {

using test::kDataArea;

class CountingInterrupt final : public Interrupt {
  public:
    void signal_used_buffer() override { ++used; }
    void signal_device_error() override { ++errors; }
    int used = 0;
    int errors = 0;
};

class ServeQueueTest : public ::testing::Test {
  protected:
    GuestMemory memory = test::make_memory();
    QueueLayout layout = test::default_layout();
    test::RingBuilder ring{memory, layout};
    CountingInterrupt interrupt;
    // The heads SERVE saw, -1 for a refused chain.
    std::vector<int> served;

    Queue make_queue() {
        auto queue = Queue::create(memory, layout, 256);
        EXPECT_TRUE(queue) << queue.error().message();
        return std::move(*queue);
    }
    void serve_all(Queue& queue) {
        serve_queue(queue, interrupt, [this](const DescriptorChain* chain) -> uint32_t {
            served.push_back(chain ? chain->head : -1);
            return chain ? 100u + chain->head : 7u;
        });
    }
};

TEST_F(ServeQueueTest, ServedChainsGoBackWithTheirLengthAndOneNotification) {
    ring.set_descriptor(2, {kDataArea, 16, kDescriptorWrite, 0});
    ring.set_descriptor(5, {kDataArea, 16, kDescriptorWrite, 0});
    ring.post(2);
    ring.post(5);
    Queue queue = make_queue();
    serve_all(queue);
    EXPECT_EQ(served, (std::vector<int>{2, 5}));
    ASSERT_EQ(ring.used_index(), 2);
    EXPECT_EQ(ring.used_element(0), std::make_pair(2u, 102u));
    EXPECT_EQ(ring.used_element(1), std::make_pair(5u, 105u));
    EXPECT_EQ(interrupt.used, 1);
    EXPECT_EQ(interrupt.errors, 0);
}

TEST_F(ServeQueueTest, RefusedChainGoesBackEmptyAndAHeadOutsideTheTableDoesNot) {
    ring.set_descriptor(0, {kDataArea, 16, kDescriptorNext, 0});  // loops onto itself
    ring.set_descriptor(3, {kDataArea, 16, 0, 0});
    ring.post(0);
    ring.post(16);  // the table has entries 0..15
    ring.post(3);
    Queue queue = make_queue();
    serve_all(queue);
    EXPECT_EQ(served, (std::vector<int>{-1, -1, 3}));
    ASSERT_EQ(ring.used_index(), 2);
    // The refused chain's length is 0 whatever SERVE answered.
    EXPECT_EQ(ring.used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(ring.used_element(1), std::make_pair(3u, 103u));
    EXPECT_EQ(interrupt.errors, 0);
}

TEST_F(ServeQueueTest, MoreStopsThePassBeforeTheNextPop) {
    ring.set_descriptor(1, {kDataArea, 16, 0, 0});
    ring.post(1);
    ring.post(1);
    Queue queue = make_queue();
    int allowed = 1;
    serve_queue(
        queue, interrupt, [&] { return allowed-- > 0; },
        [](const DescriptorChain*) -> uint32_t { return 0; });
    EXPECT_EQ(ring.used_index(), 1);
    // The second chain is still there for the next pass.
    auto next = queue.pop();
    ASSERT_TRUE(next && *next);
    EXPECT_EQ((*next)->head, 1);
}

TEST_F(ServeQueueTest, UntrustworthyRingAsksForResetAndServesNothing) {
    ring.set_available_index(100);
    Queue queue = make_queue();
    serve_all(queue);
    EXPECT_TRUE(served.empty());
    EXPECT_EQ(interrupt.errors, 1);
    EXPECT_EQ(interrupt.used, 0);
    EXPECT_EQ(ring.used_index(), 0);
}

}  // namespace
}  // namespace pv::vmm::virtio
