// Fuzz target: virtio-blk requests (virtio 1.2 §5.2.6) from a hostile
// driver, executed against a disk in memory. The device must answer every
// request with a status (or drop a chain with no room for one), never ask
// the backend for bytes outside the disk, and never report more bytes
// written than the chain's device-writable buffers hold.
//
// Input: byte 0 holds flags (bit 0 read-only, bit 1 go through the queue,
// bits 2-3 the disk size: 64 KiB, 64 KiB + 100 bytes, 4 KiB or empty).
// Without the queue, byte 1 is the number of buffers (1..8) and each buffer
// takes 5 bytes (address and length, 16 bits each little-endian, then a
// writable flag); addresses and lengths are folded into guest RAM, since
// Queue::pop only ever returns buffers that lie there. Through the queue,
// byte 1 picks the queue size (2^(byte % 8)) and the rings sit where the
// virtqueue target puts them. The rest of the input is guest RAM from
// address 0.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "imgfmt/block_device.hpp"
#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/guest_ram.hpp"
#include "vmm/devices/block/block.hpp"
#include "vmm/devices/block/block_request.hpp"

namespace {

using pv::fuzz::require;
namespace virtio = pv::vmm::virtio;

constexpr uint64_t kRamSize = 0x10000;

const pv::vmm::GuestMemory& guest_ram() {
    static const pv::vmm::GuestMemory memory = pv::fuzz::make_guest_ram({{0, kRamSize}});
    return memory;
}

// A disk in memory whose every access must be inside it: the device checks
// sector ranges before it calls the backend, so a range error here is a
// finding, not an I/O error.
class MemoryDisk final : public pv::img::BlockDevice {
  public:
    MemoryDisk(uint64_t size, bool read_only) : m_bytes(size), m_read_only(read_only) {}
    uint64_t size() const override { return m_bytes.size(); }
    const std::string& name() const override { return m_name; }
    bool read_only() const override { return m_read_only; }
    pv::Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override {
        require_inside(offset, buffer.size());
        std::copy_n(m_bytes.begin() + static_cast<std::ptrdiff_t>(offset), buffer.size(),
                    buffer.begin());
        return {};
    }
    pv::Result<void> write_at(std::span<const std::byte> buffer, uint64_t offset) override {
        require(!m_read_only);
        require_inside(offset, buffer.size());
        std::copy(buffer.begin(), buffer.end(),
                  m_bytes.begin() + static_cast<std::ptrdiff_t>(offset));
        return {};
    }
    pv::Result<void> flush() override { return {}; }
    pv::Result<void> write_zeroes(uint64_t offset, uint64_t length) override {
        require(!m_read_only);
        require_inside(offset, length);
        std::fill_n(m_bytes.begin() + static_cast<std::ptrdiff_t>(offset), length, std::byte{0});
        return {};
    }
    pv::Result<void> discard(uint64_t offset, uint64_t length) override {
        require(!m_read_only);
        require_inside(offset, length);
        return {};
    }

  private:
    void require_inside(uint64_t offset, uint64_t length) const {
        require(offset <= m_bytes.size() && length <= m_bytes.size() - offset);
    }
    std::vector<std::byte> m_bytes;
    bool m_read_only;
    std::string m_name = "fuzz disk";
};

class NullInterrupt final : public virtio::Interrupt {
  public:
    void signal_used_buffer() override {}
    void signal_device_error() override {}
};

uint64_t disk_size(uint8_t flags) {
    constexpr uint64_t kSizes[] = {0x10000, 0x10000 + 100, 0x1000, 0};
    return kSizes[(flags >> 2) & 3];
}

// One chain straight from the input, as Queue::pop would have returned it.
void run_direct(pv::fuzz::Input& input, uint8_t flags) {
    virtio::DescriptorChain chain{0, {}};
    const unsigned count = 1 + input.take_byte() % 8;
    uint64_t writable = 0;
    for (unsigned i = 0; i < count; ++i) {
        const uint64_t address = input.take_le16() % kRamSize;
        const auto length =
            static_cast<uint32_t>(std::min<uint64_t>(input.take_le16(), kRamSize - address));
        const bool device_writable = input.take_byte() & 1;
        chain.buffers.push_back({address, length, device_writable});
        if (device_writable)
            writable += length;
    }
    pv::fuzz::load_guest_ram(guest_ram(), input.rest());
    MemoryDisk disk(disk_size(flags), (flags & 1) != 0);
    const pv::vmm::BlockRequestLimits limits{(flags & 1) != 0, "fuzz-disk", 16, 1u << 22};
    const auto outcome = pv::vmm::serve_block_request(disk, limits, chain, guest_ram());
    require(outcome.used <= writable);
    // A request not carried out answers with its status byte alone.
    require(!outcome.fault || outcome.used <= 1);
}

// The whole device: queue_notify pops every chain, executes it and fills
// the used ring.
void run_through_queue(pv::fuzz::Input& input, uint8_t flags) {
    const auto queue_size = static_cast<uint16_t>(1u << (input.take_byte() % 8));
    pv::fuzz::load_guest_ram(guest_ram(), input.rest());
    const auto access = (flags & 1) != 0 ? pv::Access::ReadOnly : pv::Access::ReadWrite;
    pv::vmm::VirtioBlock block(std::make_unique<MemoryDisk>(disk_size(flags), (flags & 1) != 0),
                               pv::vmm::BlockOptions{access, "fuzz-disk", 128});
    auto queue = virtio::Queue::create(guest_ram(), {queue_size, 0, 0x800, 0xc00}, 128);
    require(queue.has_value());
    std::vector<virtio::Queue> queues;
    queues.push_back(std::move(*queue));
    NullInterrupt interrupt;
    require(block.activate(block.device_features(), std::move(queues), interrupt).has_value());
    block.queue_notify(0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    pv::fuzz::Input input(data, size);
    const uint8_t flags = input.take_byte();
    if (flags & 2)
        run_through_queue(input, flags);
    else
        run_direct(input, flags);
    return 0;
}
