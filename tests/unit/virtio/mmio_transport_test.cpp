#include "vmm/virtio/mmio_transport.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "ring_builder.hpp"

namespace pv::vmm::virtio {
namespace {

class RecordingLine final : public InterruptLine {
  public:
    void set_level(bool high) override { level = high; }
    bool level = false;
};

// A device with one queue of at most 64 entries, feature bit 3 and an
// 8-byte config space; it records what the transport tells it.
class FakeDevice final : public VirtioDevice {
  public:
    uint32_t device_type() const override { return 42; }
    std::vector<uint16_t> queue_max_sizes() const override { return {64}; }
    uint64_t device_features() const override { return uint64_t{1} << 3; }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override {
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = offset + i < 8 ? uint8_t(0xa0 + offset + i) : 0;
    }
    void write_config(uint64_t, std::span<const uint8_t>) override {}
    Result<void> activate(uint64_t features, std::vector<Queue> queues,
                          Interrupt& interrupt) override {
        acked_features = features;
        activated_queues = queues.size();
        this->interrupt = &interrupt;
        return {};
    }
    void reset() override { ++resets; }
    void queue_notify(uint16_t queue) override { notified.push_back(queue); }

    uint64_t acked_features = 0;
    size_t activated_queues = 0;
    Interrupt* interrupt = nullptr;
    int resets = 0;
    std::vector<uint16_t> notified;
};

class MmioTransportTest : public ::testing::Test {
  protected:
    GuestMemory memory = test::make_memory();
    RecordingLine line;
    std::shared_ptr<FakeDevice> device = std::make_shared<FakeDevice>();
    MmioTransport transport{device, memory, line};

    uint32_t read32(uint64_t offset) {
        uint32_t value = 0;
        transport.read(offset, std::span(reinterpret_cast<uint8_t*>(&value), 4));
        return value;
    }
    void write32(uint64_t offset, uint32_t value) {
        transport.write(offset, std::span(reinterpret_cast<const uint8_t*>(&value), 4));
    }
    void negotiate(uint64_t features) {
        write32(0x70, kStatusAcknowledge);
        write32(0x70, kStatusAcknowledge | kStatusDriver);
        write32(0x24, 0);
        write32(0x20, uint32_t(features));
        write32(0x24, 1);
        write32(0x20, uint32_t(features >> 32));
        write32(0x70, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    }
    void set_up_queue(const QueueLayout& layout) {
        write32(0x30, 0);
        write32(0x38, layout.size);
        write32(0x80, uint32_t(layout.descriptor_table));
        write32(0x84, uint32_t(layout.descriptor_table >> 32));
        write32(0x90, uint32_t(layout.available_ring));
        write32(0x94, uint32_t(layout.available_ring >> 32));
        write32(0xa0, uint32_t(layout.used_ring));
        write32(0xa4, uint32_t(layout.used_ring >> 32));
        write32(0x44, 1);
    }
    static constexpr uint32_t kReady = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk;
};

TEST_F(MmioTransportTest, IdentificationRegisters) {
    EXPECT_EQ(read32(0x000), 0x74726976u);
    EXPECT_EQ(read32(0x004), 2u);
    EXPECT_EQ(read32(0x008), 42u);
    EXPECT_EQ(read32(0x034), 64u);
}

TEST_F(MmioTransportTest, FeatureWindowsShowDeviceAndTransportBits) {
    write32(0x14, 0);
    EXPECT_EQ(read32(0x10), (1u << 3) | (1u << 28));
    write32(0x14, 1);
    EXPECT_EQ(read32(0x10), 1u);  // VIRTIO_F_VERSION_1 is bit 32
    write32(0x14, 2);
    EXPECT_EQ(read32(0x10), 0u);
}

TEST_F(MmioTransportTest, FeaturesOkSticksWithVersion1) {
    negotiate(kFeatureVersion1 | (uint64_t{1} << 3));
    EXPECT_EQ(read32(0x70), kReady);
}

TEST_F(MmioTransportTest, FeaturesOkRefusedWithoutVersion1) {
    negotiate(uint64_t{1} << 3);
    EXPECT_EQ(read32(0x70), kStatusAcknowledge | kStatusDriver);
}

TEST_F(MmioTransportTest, FeaturesOkRefusedForUnofferedBit) {
    negotiate(kFeatureVersion1 | (uint64_t{1} << 5));
    EXPECT_EQ(read32(0x70), kStatusAcknowledge | kStatusDriver);
}

TEST_F(MmioTransportTest, StatusBitsMustComeInOrder) {
    write32(0x70, kStatusDriver);  // DRIVER without ACKNOWLEDGE
    EXPECT_EQ(read32(0x70), 0u);
    write32(0x70, kStatusAcknowledge);
    write32(0x70, kStatusAcknowledge | kStatusDriver | kStatusDriverOk);  // skips FEATURES_OK
    EXPECT_EQ(read32(0x70), kStatusAcknowledge);
}

TEST_F(MmioTransportTest, WritingZeroResets) {
    negotiate(kFeatureVersion1);
    write32(0x70, 0);
    EXPECT_EQ(read32(0x70), 0u);
    EXPECT_EQ(device->resets, 1);
}

TEST_F(MmioTransportTest, GoodQueueBecomesReadyAndActivates) {
    negotiate(kFeatureVersion1);
    set_up_queue(test::default_layout());
    EXPECT_EQ(read32(0x44), 1u);
    write32(0x70, kReady | kStatusDriverOk);
    EXPECT_EQ(read32(0x70), kReady | kStatusDriverOk);
    EXPECT_EQ(device->activated_queues, 1u);
    EXPECT_EQ(device->acked_features, kFeatureVersion1);
    write32(0x50, 0);
    write32(0x50, 5);  // no such queue: ignored
    EXPECT_EQ(device->notified, std::vector<uint16_t>{0});
}

TEST_F(MmioTransportTest, MisalignedQueueIsNotEnabled) {
    negotiate(kFeatureVersion1);
    QueueLayout layout = test::default_layout();
    layout.descriptor_table += 4;
    set_up_queue(layout);
    EXPECT_EQ(read32(0x44), 0u);
}

TEST_F(MmioTransportTest, QueueLargerThanMaximumIsNotEnabled) {
    negotiate(kFeatureVersion1);
    set_up_queue(test::default_layout(128));
    EXPECT_EQ(read32(0x44), 0u);
}

TEST_F(MmioTransportTest, DriverOkWithoutReadyQueueNeedsReset) {
    negotiate(kFeatureVersion1);
    write32(0x70, kReady | kStatusDriverOk);
    EXPECT_TRUE(read32(0x70) & kStatusDeviceNeedsReset);
    EXPECT_EQ(device->activated_queues, 0u);
}

TEST_F(MmioTransportTest, InterruptStatusAndAcknowledge) {
    negotiate(kFeatureVersion1);
    set_up_queue(test::default_layout());
    write32(0x70, kReady | kStatusDriverOk);
    ASSERT_NE(device->interrupt, nullptr);
    device->interrupt->signal_used_buffer();
    EXPECT_EQ(read32(0x60), kInterruptUsedBuffer);
    EXPECT_TRUE(line.level);
    write32(0x64, kInterruptUsedBuffer);
    EXPECT_EQ(read32(0x60), 0u);
    EXPECT_FALSE(line.level);
}

TEST_F(MmioTransportTest, DeviceErrorSetsNeedsResetAndConfigInterrupt) {
    negotiate(kFeatureVersion1);
    set_up_queue(test::default_layout());
    write32(0x70, kReady | kStatusDriverOk);
    device->interrupt->signal_device_error();
    EXPECT_TRUE(read32(0x70) & kStatusDeviceNeedsReset);
    EXPECT_EQ(read32(0x60), kInterruptConfigChange);
    write32(0x50, 0);  // a broken device is not notified any more
    EXPECT_TRUE(device->notified.empty());
    // Only a reset (§2.1.2) brings it back.
    write32(0x70, kReady | kStatusDriverOk | kStatusFailed);
    EXPECT_FALSE(read32(0x70) & kStatusFailed);
    write32(0x70, 0);
    EXPECT_EQ(read32(0x70), 0u);
    EXPECT_EQ(read32(0x60), 0u);
}

TEST_F(MmioTransportTest, ConfigSpaceAtOffset0x100AnyWidth) {
    uint8_t byte = 0;
    transport.read(0x101, std::span(&byte, 1));
    EXPECT_EQ(byte, 0xa1);
    uint16_t half = 0;
    transport.read(0x106, std::span(reinterpret_cast<uint8_t*>(&half), 2));
    EXPECT_EQ(half, 0xa7a6);
}

TEST_F(MmioTransportTest, NarrowRegisterReadsReturnZero) {
    uint16_t half = 0xffff;
    transport.read(0x000, std::span(reinterpret_cast<uint8_t*>(&half), 2));
    EXPECT_EQ(half, 0);
}

TEST_F(MmioTransportTest, NotifyBeforeDriverOkIsIgnored) {
    negotiate(kFeatureVersion1);
    set_up_queue(test::default_layout());
    transport.notify(0);
    write32(0x50, 0);
    EXPECT_TRUE(device->notified.empty());
}

// Under KVM the doorbell is an ioeventfd: the VMM's I/O thread calls
// notify(), and a QueueNotify write that still traps on a vCPU thread (no
// ioeventfd matched its value) must not run device code there.
TEST(MmioTransportEventFd, TrappedNotifyIsDroppedAndNotifyReachesTheDevice) {
    GuestMemory memory = test::make_memory();
    RecordingLine line;
    auto device = std::make_shared<FakeDevice>();
    MmioTransport transport{device, memory, line, NotifyDelivery::EventFd};
    auto write32 = [&](uint64_t offset, uint32_t value) {
        transport.write(offset, std::span(reinterpret_cast<const uint8_t*>(&value), 4));
    };
    const QueueLayout layout = test::default_layout();
    write32(0x70, kStatusAcknowledge);
    write32(0x70, kStatusAcknowledge | kStatusDriver);
    write32(0x24, 1);
    write32(0x20, 1);  // VERSION_1 (bit 32)
    write32(0x70, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    write32(0x38, layout.size);
    write32(0x80, uint32_t(layout.descriptor_table));
    write32(0x90, uint32_t(layout.available_ring));
    write32(0xa0, uint32_t(layout.used_ring));
    write32(0x44, 1);
    write32(0x70, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    ASSERT_EQ(device->activated_queues, 1u);
    write32(kQueueNotifyOffset, 0);
    EXPECT_TRUE(device->notified.empty());
    transport.notify(0);
    transport.notify(7);  // no such queue
    EXPECT_EQ(device->notified, std::vector<uint16_t>{0});
    EXPECT_EQ(transport.queue_count(), 1u);
}

TEST(MmioCommandLine, NamesSizeAddressAndIrq) {
    EXPECT_EQ(virtio_mmio_command_line(0xd0000000, 5), "virtio_mmio.device=4K@0xd0000000:5");
}

}  // namespace
}  // namespace pv::vmm::virtio
