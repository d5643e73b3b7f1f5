#pragma once

// A split virtqueue (virtio 1.2 §2.7) read from guest memory. The guest owns
// every byte of the rings, so it is hostile input: the
// ring layout is checked once when the queue is enabled, and every chain is
// walked with indices, lengths and addresses checked and a length cap (a loop
// runs into it), so a bad chain becomes an error value, never a crash or a
// hang.
// Ring fields are little-endian (§2.4) and so is the x86 host; all guest
// accesses go through GuestMemory's checked accessors.

#include <cstdint>
#include <optional>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "common/error.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace pv::vmm::virtio {

// §2.7.5: descriptor flags.
inline constexpr uint16_t kDescriptorNext = 1;
inline constexpr uint16_t kDescriptorWrite = 2;
inline constexpr uint16_t kDescriptorIndirect = 4;
// §2.7: Queue Size is a power of 2 no larger than 32768.
inline constexpr uint16_t kMaxQueueSize = 32768;

// §2.7.5: one entry of the descriptor table (or of an indirect table).
struct Descriptor {
    uint64_t address;
    uint32_t length;
    uint16_t flags;
    uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);

// Where the driver placed the three rings and how large they are (§4.2.2:
// QueueNum, QueueDesc, QueueDriver, QueueDevice).
struct QueueLayout {
    uint16_t size = 0;
    uint64_t descriptor_table = 0;
    uint64_t available_ring = 0;
    uint64_t used_ring = 0;
};

enum class QueueFault {
    DescriptorIndexOutOfRange,  // head or next >= queue (or indirect table) size
    ChainTooLong,               // more descriptors than the queue size (§2.7.5.3.1), or a loop
    AddressOutsideMemory,       // a buffer or table not inside guest RAM
    LengthOverflow,             // address + length wraps around 2^64
    NestedIndirect,             // an indirect table refers to another one
    BadIndirectLength,          // table length zero or not a multiple of 16
    IndirectWithNext,           // INDIRECT and NEXT both set (§2.7.5.3.1)
    ReadableAfterWritable,      // device-readable after device-writable (§2.7.4.2)
    AvailableIndexOutOfRange,   // avail idx went backwards or jumped by > size
    RingUnreadable,             // a ring field could not be read or written
};

[[nodiscard]] const char* fault_name(QueueFault fault);

// A chain fault names its head so the device can return the chain to the
// driver; a fatal fault means the ring itself is unusable and the device
// must ask for a reset (§2.1.2 DEVICE_NEEDS_RESET).
struct QueueError {
    QueueFault fault;
    uint16_t head = 0;
    bool fatal = false;
};

// One guest buffer of a chain, already known to lie inside guest memory.
struct Buffer {
    uint64_t address;
    uint32_t length;
    bool device_writable;
};

// Buffers a chain holds without allocating; longer ones go to the heap.
inline constexpr size_t kInlineChainBuffers = 16;

struct DescriptorChain {
    uint16_t head = 0;
    boost::container::small_vector<Buffer, kInlineChainBuffers> buffers;
};

template <class T>
using QueueResult = tl::expected<T, QueueError>;

class Queue {
  public:
    // Checks the layout (§2.7: size a power of 2 ≤ 32768 and ≤ MAX_SIZE;
    // §2.7.5/.6/.8 alignments 16/2/4; all three rings inside guest memory).
    [[nodiscard]] static Result<Queue> create(const GuestMemory& memory, const QueueLayout& layout,
                                              uint16_t max_size);

    [[nodiscard]] const QueueLayout& layout() const { return m_layout; }

    // The next available chain, nothing when the driver has posted none, or
    // the fault found while walking it. After a fatal fault the queue stays
    // broken until it is recreated.
    [[nodiscard]] QueueResult<std::optional<DescriptorChain>> pop();

    // Returns chain HEAD to the driver with LENGTH bytes written (§2.7.8).
    [[nodiscard]] Result<void> add_used(uint16_t head, uint32_t length);

    [[nodiscard]] const GuestMemory& memory() const { return *m_memory; }

  private:
    Queue(const GuestMemory& memory, const QueueLayout& layout)
        : m_memory(&memory), m_layout(layout) {}

    [[nodiscard]] QueueResult<DescriptorChain> walk(uint16_t head) const;
    [[nodiscard]] QueueResult<void> walk_indirect(const Descriptor& table, uint16_t head,
                                                  DescriptorChain& chain) const;
    [[nodiscard]] QueueResult<void> append(const Descriptor& descriptor, uint16_t head,
                                           DescriptorChain& chain) const;

    const GuestMemory* m_memory;
    QueueLayout m_layout;
    uint16_t m_next_available = 0;
    uint16_t m_next_used = 0;
    bool m_broken = false;
};

}  // namespace pv::vmm::virtio
