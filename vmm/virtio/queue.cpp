#include "vmm/virtio/queue.hpp"

#include <atomic>
#include <bit>

namespace pv::vmm::virtio {
namespace {

// §2.7.6: flags, idx, ring[size], used_event; §2.7.8: flags, idx,
// ring[size] of {id, len}, avail_event.
constexpr uint64_t kRingHeader = 4;
constexpr uint64_t kAvailableEntry = 2;
constexpr uint64_t kUsedEntry = 8;

struct UsedElement {
    uint32_t id;
    uint32_t length;
};
static_assert(sizeof(UsedElement) == kUsedEntry);

tl::unexpected<QueueError> chain_fault(QueueFault fault, uint16_t head) {
    return tl::unexpected(QueueError{fault, head, false});
}

tl::unexpected<QueueError> ring_fault(QueueFault fault) {
    return tl::unexpected(QueueError{fault, 0, true});
}

Result<void> check_ring(const GuestMemory& memory, const char* what, uint64_t address,
                        uint64_t alignment, uint64_t length) {
    if (address % alignment != 0)
        return fail(make_error("enable virtqueue", std::string(what) + " ring misaligned"));
    if (!memory.slice(address, length))
        return fail(make_error("enable virtqueue", std::string(what) + " ring outside memory"));
    return {};
}

}  // namespace

const char* fault_name(QueueFault fault) {
    switch (fault) {
        case QueueFault::DescriptorIndexOutOfRange:
            return "descriptor index out of range";
        case QueueFault::ChainTooLong:
            return "descriptor chain too long";
        case QueueFault::AddressOutsideMemory:
            return "buffer outside guest memory";
        case QueueFault::LengthOverflow:
            return "buffer address + length overflows";
        case QueueFault::NestedIndirect:
            return "nested indirect descriptor table";
        case QueueFault::BadIndirectLength:
            return "bad indirect table length";
        case QueueFault::IndirectWithNext:
            return "indirect descriptor with NEXT";
        case QueueFault::ReadableAfterWritable:
            return "readable buffer after writable one";
        case QueueFault::AvailableIndexOutOfRange:
            return "available index out of range";
        case QueueFault::RingUnreadable:
            return "ring not accessible";
    }
    return "unknown queue fault";
}

Result<Queue> Queue::create(const GuestMemory& memory, const QueueLayout& layout,
                            uint16_t max_size) {
    const uint64_t size = layout.size;
    if (size == 0 || !std::has_single_bit(size) || size > kMaxQueueSize || size > max_size)
        return fail(make_error("enable virtqueue", "size " + std::to_string(size) + " invalid"));
    PV_TRY(
        check_ring(memory, "descriptor", layout.descriptor_table, 16, sizeof(Descriptor) * size));
    PV_TRY(check_ring(memory, "available", layout.available_ring, 2,
                      kRingHeader + kAvailableEntry * size + 2));
    PV_TRY(check_ring(memory, "used", layout.used_ring, 4, kRingHeader + kUsedEntry * size + 2));
    return Queue(memory, layout);
}

QueueResult<std::optional<DescriptorChain>> Queue::pop() {
    if (m_broken)
        return ring_fault(QueueFault::AvailableIndexOutOfRange);
    auto available_index = m_memory->read<uint16_t>(m_layout.available_ring + 2);
    if (!available_index)
        return ring_fault(QueueFault::RingUnreadable);
    // §2.7.13.3: the driver only ever adds up to Queue Size entries beyond
    // what the device consumed; a larger distance (including an index that
    // went backwards) means a broken or hostile driver.
    const auto pending = static_cast<uint16_t>(*available_index - m_next_available);
    if (pending > m_layout.size) {
        m_broken = true;
        return ring_fault(QueueFault::AvailableIndexOutOfRange);
    }
    if (pending == 0)
        return std::optional<DescriptorChain>{};
    // The ring entry must be read after the index that published it.
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint64_t slot = m_next_available % m_layout.size;
    auto head =
        m_memory->read<uint16_t>(m_layout.available_ring + kRingHeader + kAvailableEntry * slot);
    if (!head)
        return ring_fault(QueueFault::RingUnreadable);
    ++m_next_available;
    auto chain = walk(*head);
    if (!chain)
        return tl::unexpected(chain.error());
    return std::optional<DescriptorChain>(std::move(*chain));
}

QueueResult<DescriptorChain> Queue::walk(uint16_t head) const {
    DescriptorChain chain{head, {}};
    uint16_t index = head;
    while (true) {
        if (index >= m_layout.size)
            return chain_fault(QueueFault::DescriptorIndexOutOfRange, head);
        auto descriptor =
            m_memory->read<Descriptor>(m_layout.descriptor_table + sizeof(Descriptor) * index);
        if (!descriptor)
            return chain_fault(QueueFault::RingUnreadable, head);
        if (descriptor->flags & kDescriptorIndirect) {
            // §2.7.5.3.1: an indirect descriptor ends the main chain.
            if (descriptor->flags & kDescriptorNext)
                return chain_fault(QueueFault::IndirectWithNext, head);
            if (auto walked = walk_indirect(*descriptor, head, chain); !walked)
                return tl::unexpected(walked.error());
            return chain;
        }
        if (auto appended = append(*descriptor, head, chain); !appended)
            return tl::unexpected(appended.error());
        if (!(descriptor->flags & kDescriptorNext))
            return chain;
        index = descriptor->next;
    }
}

QueueResult<void> Queue::walk_indirect(const Descriptor& table, uint16_t head,
                                       DescriptorChain& chain) const {
    // §2.7.5.3.1: the table holds whole descriptors and lies in memory.
    if (table.length == 0 || table.length % sizeof(Descriptor) != 0)
        return chain_fault(QueueFault::BadIndirectLength, head);
    const uint32_t count = table.length / sizeof(Descriptor);
    if (count + chain.buffers.size() > m_layout.size)
        return chain_fault(QueueFault::ChainTooLong, head);
    uint64_t end = 0;
    if (__builtin_add_overflow(table.address, uint64_t{table.length}, &end))
        return chain_fault(QueueFault::LengthOverflow, head);
    if (!m_memory->slice(table.address, table.length))
        return chain_fault(QueueFault::AddressOutsideMemory, head);
    uint32_t index = 0;
    while (true) {
        if (index >= count)
            return chain_fault(QueueFault::DescriptorIndexOutOfRange, head);
        auto descriptor = m_memory->read<Descriptor>(table.address + sizeof(Descriptor) * index);
        if (!descriptor)
            return chain_fault(QueueFault::RingUnreadable, head);
        // §2.7.5.3.1: no indirect descriptor inside an indirect table.
        if (descriptor->flags & kDescriptorIndirect)
            return chain_fault(QueueFault::NestedIndirect, head);
        if (auto appended = append(*descriptor, head, chain); !appended)
            return appended;
        if (!(descriptor->flags & kDescriptorNext))
            return {};
        index = descriptor->next;
    }
}

QueueResult<void> Queue::append(const Descriptor& descriptor, uint16_t head,
                                DescriptorChain& chain) const {
    // The walk's only bound: no chain longer than Queue Size (§2.7.5.3.1),
    // direct and indirect descriptors together. A chain that loops runs into
    // it after at most Queue Size steps, with nothing allocated to find it.
    if (chain.buffers.size() >= m_layout.size)
        return chain_fault(QueueFault::ChainTooLong, head);
    uint64_t end = 0;
    if (__builtin_add_overflow(descriptor.address, uint64_t{descriptor.length}, &end))
        return chain_fault(QueueFault::LengthOverflow, head);
    if (!m_memory->slice(descriptor.address, descriptor.length))
        return chain_fault(QueueFault::AddressOutsideMemory, head);
    const bool writable = descriptor.flags & kDescriptorWrite;
    // §2.7.4.2: device-writable buffers come after all device-readable ones.
    if (!writable && !chain.buffers.empty() && chain.buffers.back().device_writable)
        return chain_fault(QueueFault::ReadableAfterWritable, head);
    chain.buffers.push_back({descriptor.address, descriptor.length, writable});
    return {};
}

Result<void> Queue::add_used(uint16_t head, uint32_t length) {
    const uint64_t slot = m_next_used % m_layout.size;
    PV_TRY(m_memory->write(m_layout.used_ring + kRingHeader + kUsedEntry * slot,
                           UsedElement{head, length}));
    ++m_next_used;
    // §2.7.8.2: the element must be visible before the index that publishes it.
    std::atomic_thread_fence(std::memory_order_release);
    return m_memory->write<uint16_t>(m_layout.used_ring + 2, m_next_used);
}

}  // namespace pv::vmm::virtio
