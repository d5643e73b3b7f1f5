// Fuzz target: split virtqueue chain walking (virtio 1.2 §2.7) over rings a
// hostile driver wrote. Every chain Queue::pop returns must keep the
// promises the devices rely on: at most Queue Size buffers, each inside
// guest RAM, device-readable ones before device-writable ones; a bad chain
// or ring is an error value, and nothing loops.
//
// Input: byte 0 picks the queue size (2^(byte % 8), 1..128), byte 1 how
// many chains to pop; the rest is guest RAM from address 0, with the
// descriptor table at 0, the available ring at 0x800 and the used ring at
// 0xc00. Buffers and indirect tables may point anywhere, including the gap
// between the two RAM regions.

#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/guest_ram.hpp"
#include "vmm/virtio/queue.hpp"

namespace {

using pv::fuzz::require;
namespace virtio = pv::vmm::virtio;

constexpr uint16_t kMaxSize = 128;
constexpr uint64_t kAvailableRing = 0x800;
constexpr uint64_t kUsedRing = 0xc00;

const pv::vmm::GuestMemory& guest_ram() {
    static const pv::vmm::GuestMemory memory =
        pv::fuzz::make_guest_ram({{0, 0x10000}, {0x20000, 0x10000}});
    return memory;
}

// Checks one popped chain and returns the bytes a device could write.
uint32_t check_chain(const virtio::DescriptorChain& chain, uint16_t size) {
    require(chain.head < size);
    require(chain.buffers.size() <= size);
    bool seen_writable = false;
    uint64_t writable = 0;
    for (const virtio::Buffer& buffer : chain.buffers) {
        require(guest_ram().slice(buffer.address, buffer.length).has_value());
        require(buffer.device_writable || !seen_writable);
        seen_writable |= buffer.device_writable;
        if (buffer.device_writable)
            writable += buffer.length;
    }
    return static_cast<uint32_t>(std::min<uint64_t>(writable, UINT32_MAX));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    pv::fuzz::Input input(data, size);
    const auto queue_size = static_cast<uint16_t>(1u << (input.take_byte() % 8));
    const unsigned pops = input.take_byte();
    const pv::vmm::GuestMemory& memory = guest_ram();
    pv::fuzz::load_guest_ram(memory, input.rest());
    auto queue =
        virtio::Queue::create(memory, {queue_size, 0, kAvailableRing, kUsedRing}, kMaxSize);
    require(queue.has_value());
    for (unsigned i = 0; i <= pops; ++i) {
        auto next = queue->pop();
        if (!next) {
            if (next.error().fatal)
                break;
            // As VirtioBlock does: a chain fault returns the head unread.
            if (next.error().head < queue_size)
                (void)queue->add_used(next.error().head, 0);
            continue;
        }
        if (!*next)
            break;
        (void)queue->add_used((*next)->head, check_chain(**next, queue_size));
    }
    return 0;
}
