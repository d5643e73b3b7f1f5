#pragma once

// A virtio-vsock device over plain guest memory with a fake backend: the
// test plays the guest driver (posting TX packets and RX buffers and reading
// what the device wrote back) and the host (calling the VsockHost verbs).

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <map>
#include <string>
#include <vector>

#include "tests/unit/virtio/ring_builder.hpp"
#include "vmm/devices/vsock/vsock.hpp"

namespace pv::vmm::vsock::test {

inline constexpr uint64_t kGuestCid = 3;
inline constexpr uint16_t kQueueSize = 16;
inline constexpr uint64_t kTxSlots = 0x20000;  // 16 slots of 64 KiB + header
inline constexpr uint64_t kTxSlotSize = 0x11000;
inline constexpr uint64_t kRxSlots = 0x140000;  // 16 slots of 4 KiB
inline constexpr uint64_t kRxSlotSize = 0x1000;

// Records every call the device makes.
class FakeBackend final : public VsockBackend {
  public:
    struct Log {
        VsockHost* host = nullptr;
        std::vector<std::pair<ConnectionId, uint32_t>> connects;
        std::vector<std::pair<ConnectionId, Answer>> answers;
        std::map<ConnectionId, std::string> received;
        std::vector<ConnectionId> shutdowns;
        std::vector<ConnectionId> closes;
        std::vector<ConnectionId> writables;
    };
    explicit FakeBackend(Log& log) : m_log(log) {}
    void attach(VsockHost& host) override { m_log.host = &host; }
    void connect(ConnectionId id, uint32_t port) override { m_log.connects.emplace_back(id, port); }
    void guest_answered(ConnectionId id, Answer answer) override {
        m_log.answers.emplace_back(id, answer);
    }
    void receive(ConnectionId id, std::span<const uint8_t> data) override {
        m_log.received[id].append(data.begin(), data.end());
    }
    void guest_shutdown(ConnectionId id) override { m_log.shutdowns.push_back(id); }
    void close(ConnectionId id) override { m_log.closes.push_back(id); }
    void writable(ConnectionId id) override { m_log.writables.push_back(id); }

  private:
    Log& m_log;
};

class CountingInterrupt final : public virtio::Interrupt {
  public:
    void signal_used_buffer() override { ++used; }
    void signal_device_error() override { ++errors; }
    int used = 0;
    int errors = 0;
};

struct Packet {
    PacketHeader header;
    std::string payload;
};

// A header from the guest (CID 3, port GUEST_PORT) to the host's HOST_PORT.
inline PacketHeader guest_header(Op op, uint32_t guest_port = 40000, uint32_t host_port = 1234) {
    PacketHeader header;
    header.src_cid = kGuestCid;
    header.dst_cid = kHostCid;
    header.src_port = guest_port;
    header.dst_port = host_port;
    header.type = kTypeStream;
    header.op = static_cast<uint16_t>(op);
    header.buf_alloc = 64 * 1024;
    return header;
}

class VsockTest : public ::testing::Test {
  protected:
    GuestMemory memory = std::move(*GuestMemory::create({{0, 0x200000}}));
    boost::asio::io_context events;
    FakeBackend::Log backend;
    CountingInterrupt interrupt;
    std::shared_ptr<VirtioVsock> device;
    virtio::QueueLayout rx_layout{kQueueSize, 0x1000, 0x2000, 0x3000};
    virtio::QueueLayout tx_layout{kQueueSize, 0x4000, 0x5000, 0x6000};
    virtio::QueueLayout event_layout{kQueueSize, 0x7000, 0x8000, 0x9000};
    virtio::test::RingBuilder rx{memory, rx_layout};
    virtio::test::RingBuilder tx{memory, tx_layout};
    uint16_t rx_posted = 0;
    uint16_t rx_seen = 0;
    uint16_t tx_posted = 0;

    VsockOptions options() {
        VsockOptions result;
        result.guest_cid = kGuestCid;
        result.queue_size = kQueueSize;
        result.buffer_size = 4096;
        result.pending_limit = 4096;
        result.max_connections = 4;
        result.max_replies = 4;
        return result;
    }

    void start(VsockOptions chosen) {
        auto created = VirtioVsock::create(chosen, std::make_unique<FakeBackend>(backend), events);
        ASSERT_TRUE(created) << created.error().message();
        device = *created;
        std::vector<virtio::Queue> queues;
        for (const auto& layout : {rx_layout, tx_layout, event_layout})
            queues.push_back(*virtio::Queue::create(memory, layout, kQueueSize));
        ASSERT_TRUE(device->activate(virtio::kFeatureVersion1, std::move(queues), interrupt));
        events.poll();
        events.restart();
    }
    void SetUp() override { start(options()); }

    void run_loop() {
        events.poll();
        events.restart();
    }

    // Posts one TX packet in a single readable descriptor and notifies.
    void send(PacketHeader header, const std::string& payload = "", bool notify = true) {
        if (header.op == static_cast<uint16_t>(Op::ReadWrite) && header.len == 0)
            header.len = static_cast<uint32_t>(payload.size());
        const uint16_t index = tx_posted++ % kQueueSize;
        const uint64_t slot = kTxSlots + index * kTxSlotSize;
        ASSERT_TRUE(memory.write(slot, header));
        ASSERT_TRUE(
            memory.write_bytes(slot + sizeof(header),
                               {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}));
        const auto length = static_cast<uint32_t>(sizeof(header) + payload.size());
        tx.set_descriptor(index, {slot, length, 0, 0});
        tx.post(index);
        if (notify) {
            device->queue_notify(kQueueTx);
            run_loop();
        }
    }
    // Posts COUNT RX buffers of SIZE bytes and notifies.
    void give_rx(int count, uint32_t size = kRxSlotSize) {
        for (int i = 0; i < count; ++i) {
            const uint16_t index = rx_posted++ % kQueueSize;
            rx.set_descriptor(index,
                              {kRxSlots + index * kRxSlotSize, size, virtio::kDescriptorWrite, 0});
            rx.post(index);
        }
        device->queue_notify(kQueueRx);
        run_loop();
    }
    // Packets the device put into the RX ring since the last call.
    std::vector<Packet> take_rx() {
        std::vector<Packet> packets;
        for (; rx_seen != rx.used_index(); ++rx_seen) {
            const auto [id, length] = rx.used_element(rx_seen);
            const uint64_t address = kRxSlots + id * kRxSlotSize;
            Packet packet;
            EXPECT_GE(length, sizeof(PacketHeader));
            packet.header = *memory.read<PacketHeader>(address);
            EXPECT_EQ(length, sizeof(PacketHeader) + packet.header.len);
            packet.payload.resize(packet.header.len);
            EXPECT_TRUE(memory.read_bytes(
                address + sizeof(PacketHeader),
                {reinterpret_cast<uint8_t*>(packet.payload.data()), packet.payload.size()}));
            packets.push_back(packet);
        }
        return packets;
    }
    // A guest-initiated stream, accepted by the backend; returns its id.
    ConnectionId establish(uint32_t guest_port = 40000, uint32_t host_port = 1234) {
        send(guest_header(Op::Request, guest_port, host_port));
        EXPECT_FALSE(backend.connects.empty());
        const ConnectionId id = backend.connects.back().first;
        backend.host->connect_done(id, Answer::Accepted);
        give_rx(1);
        auto packets = take_rx();
        EXPECT_EQ(packets.size(), 1u);
        if (!packets.empty()) {
            EXPECT_EQ(packets[0].header.op, static_cast<uint16_t>(Op::Response));
        }
        return id;
    }
};

inline bool is_op(const Packet& packet, Op op) {
    return packet.header.op == static_cast<uint16_t>(op);
}

}  // namespace pv::vmm::vsock::test
