// Fuzz target: virtio-vsock packet handling, as a hostile guest drives it
// through its TX and RX rings, interleaved with host-side events (accepts,
// refusals, host data, consumption, end of file, resets, host-initiated
// connects). The input is a script of commands, one leading byte each:
//   0: a TX packet: 44 header bytes, one payload-length byte, the payload;
//      a flag byte first decides whether the CIDs and type are made valid,
//      so the fuzzer reaches established streams
//   1: RX buffers: a count byte and a size byte
//   2: a raw TX chain: two descriptors with fuzzed lengths and flags
//   3: a host event on the newest stream: the byte after picks which
// The device must never crash, hold more guest bytes in the backend than
// the buffer it advertises, or exceed its connection cap.

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_input.hpp"
#include "vmm/devices/vsock/vsock.hpp"

namespace {

using namespace pv::vmm;
using namespace pv::vmm::vsock;

constexpr uint16_t kQueueSize = 8;
constexpr uint64_t kMemorySize = 0x40000;
constexpr uint64_t kTxData = 0x10000;
constexpr uint64_t kRxData = 0x20000;
constexpr uint32_t kBufferSize = 1024;

struct Outstanding {
    std::map<ConnectionId, uint64_t> bytes;  // received, not yet consumed
    std::vector<ConnectionId> ids;           // every id seen, newest last
};

class ScriptBackend final : public VsockBackend {
  public:
    explicit ScriptBackend(Outstanding& state) : m_state(state) {}
    void attach(VsockHost&) override {}
    void connect(ConnectionId id, uint32_t) override { m_state.ids.push_back(id); }
    void guest_answered(ConnectionId, Answer) override {}
    void receive(ConnectionId id, std::span<const uint8_t> data) override {
        m_state.bytes[id] += data.size();
        // The device must stop the guest at the buffer it advertised.
        if (m_state.bytes[id] > kBufferSize)
            std::abort();
    }
    void guest_shutdown(ConnectionId) override {}
    void close(ConnectionId id) override { m_state.bytes.erase(id); }
    void writable(ConnectionId) override {}

  private:
    Outstanding& m_state;
};

class NullInterrupt final : public virtio::Interrupt {
  public:
    void signal_used_buffer() override {}
    void signal_device_error() override {}
};

// Posts chains the way a driver would, reusing descriptors round robin.
struct Rings {
    const GuestMemory& memory;
    virtio::QueueLayout layout;
    uint16_t next_descriptor = 0;
    uint16_t next_available = 0;

    // The index the next post() puts its first descriptor at.
    [[nodiscard]] uint16_t head() const { return next_descriptor % kQueueSize; }
    void post(virtio::Descriptor first, std::optional<virtio::Descriptor> second) {
        const uint16_t index = head();
        (void)memory.write(layout.descriptor_table + 16 * index, first);
        if (second)
            (void)memory.write(layout.descriptor_table + 16 * ((index + 1) % kQueueSize), *second);
        next_descriptor = static_cast<uint16_t>(next_descriptor + (second ? 2 : 1));
        const uint16_t slot = next_available % kQueueSize;
        (void)memory.write<uint16_t>(layout.available_ring + 4 + 2 * slot, index);
        ++next_available;
        (void)memory.write<uint16_t>(layout.available_ring + 2, next_available);
    }
};

void host_event(VirtioVsock& device, Outstanding& state, uint8_t choice) {
    const ConnectionId id = state.ids.empty() ? 0 : state.ids.back();
    static const uint8_t bytes[64] = {};
    switch (choice % 7) {
        case 0:
            device.connect_done(id, Answer::Accepted);
            break;
        case 1:
            device.connect_done(id, Answer::Refused);
            break;
        case 2: {
            const uint32_t capacity = device.send_capacity(id);
            device.send(id, {bytes, std::min<size_t>(capacity, sizeof(bytes))});
            break;
        }
        case 3: {
            const uint64_t held = state.bytes.contains(id) ? state.bytes[id] : 0;
            const auto count = static_cast<uint32_t>(std::min<uint64_t>(held, choice));
            device.consumed(id, count);
            if (state.bytes.contains(id))
                state.bytes[id] -= count;
            break;
        }
        case 4:
            device.host_shutdown(id);
            break;
        case 5:
            device.host_reset(id);
            break;
        case 6:
            if (auto outgoing = device.connect_guest(choice))
                state.ids.push_back(outgoing->id);
            break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto memory = GuestMemory::create({{0, kMemorySize}});
    if (!memory)
        std::abort();
    boost::asio::io_context events;
    Outstanding state;
    VsockOptions options;
    options.queue_size = kQueueSize;
    options.buffer_size = kBufferSize;
    options.pending_limit = kBufferSize;
    options.max_connections = 4;
    options.max_replies = 4;
    auto device = VirtioVsock::create(options, std::make_unique<ScriptBackend>(state), events);
    if (!device)
        std::abort();
    Rings rx{*memory, {kQueueSize, 0x1000, 0x2000, 0x3000}};
    Rings tx{*memory, {kQueueSize, 0x4000, 0x5000, 0x6000}};
    std::vector<virtio::Queue> queues;
    for (const auto& layout :
         {rx.layout, tx.layout, virtio::QueueLayout{kQueueSize, 0x7000, 0x8000, 0x9000}})
        queues.push_back(*virtio::Queue::create(*memory, layout, kQueueSize));
    NullInterrupt interrupt;
    if (!(*device)->activate(virtio::kFeatureVersion1, std::move(queues), interrupt))
        std::abort();

    pv::fuzz::Input input(data, size);
    while (!input.empty()) {
        const uint8_t command = input.take_byte() % 4;
        if (command == 0) {
            const uint8_t flags = input.take_byte();
            PacketHeader header;
            const std::string_view raw = input.take(sizeof(header));
            std::memcpy(&header, raw.data(), raw.size());
            if (flags & 1) {
                header.src_cid = options.guest_cid;
                header.dst_cid = kHostCid;
                header.type = kTypeStream;
                header.op = static_cast<uint16_t>(header.op % 8);
            }
            const std::string_view payload = input.take(input.take_byte());
            if (flags & 2)
                header.len = static_cast<uint32_t>(payload.size());
            (void)memory->write(kTxData, header);
            (void)memory->write_bytes(
                kTxData + sizeof(header),
                {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()});
            tx.post({kTxData, static_cast<uint32_t>(sizeof(header) + payload.size()), 0, 0},
                    std::nullopt);
            (*device)->queue_notify(kQueueTx);
        } else if (command == 1) {
            const uint8_t count = input.take_byte() % 4;
            const uint32_t length = 16u * input.take_byte();
            for (uint8_t i = 0; i < count; ++i)
                rx.post({kRxData + 0x1000 * i, length, virtio::kDescriptorWrite, 0}, std::nullopt);
            (*device)->queue_notify(kQueueRx);
        } else if (command == 2) {
            const uint8_t a = input.take_byte();
            const uint8_t b = input.take_byte();
            const uint16_t next = static_cast<uint16_t>((tx.head() + 1) % kQueueSize);
            tx.post({kTxData, a, static_cast<uint16_t>(a & 3), next},
                    virtio::Descriptor{kTxData + 44, b, static_cast<uint16_t>(b & 2), 0});
            (*device)->queue_notify(kQueueTx);
        } else {
            host_event(**device, state, input.take_byte());
        }
        events.poll();
        events.restart();
        if ((*device)->connection_count() > options.max_connections)
            std::abort();
    }
    return 0;
}
