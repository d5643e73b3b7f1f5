#pragma once

// Lays out a split virtqueue (virtio 1.2 §2.7) in plain guest memory the way
// a driver would, so tests can post well-formed and malformed chains.

#include <gtest/gtest.h>

#include <cstdint>

#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/queue.hpp"

namespace pv::vmm::virtio::test {

inline constexpr uint64_t kMemorySize = 0x100000;  // 1 MiB
inline constexpr uint64_t kDescriptorTable = 0x1000;
inline constexpr uint64_t kAvailableRing = 0x2000;
inline constexpr uint64_t kUsedRing = 0x3000;
inline constexpr uint64_t kDataArea = 0x10000;

inline GuestMemory make_memory() {
    auto memory = GuestMemory::create({{0, kMemorySize}});
    EXPECT_TRUE(memory) << memory.error().message();
    return std::move(*memory);
}

inline QueueLayout default_layout(uint16_t size = 16) {
    return {size, kDescriptorTable, kAvailableRing, kUsedRing};
}

class RingBuilder {
  public:
    RingBuilder(const GuestMemory& memory, QueueLayout layout)
        : m_memory(memory), m_layout(layout) {}

    void set_descriptor(uint16_t index, Descriptor descriptor) {
        set_descriptor_at(m_layout.descriptor_table, index, descriptor);
    }
    void set_descriptor_at(uint64_t table, uint32_t index, Descriptor descriptor) {
        ASSERT_TRUE(m_memory.write(table + sizeof(Descriptor) * index, descriptor));
    }
    // Puts HEAD into the next avail slot and publishes it (§2.7.13).
    void post(uint16_t head) {
        const uint64_t slot = m_available_index % m_layout.size;
        ASSERT_TRUE(m_memory.write<uint16_t>(m_layout.available_ring + 4 + 2 * slot, head));
        set_available_index(static_cast<uint16_t>(m_available_index + 1));
    }
    void set_available_index(uint16_t index) {
        m_available_index = index;
        ASSERT_TRUE(m_memory.write<uint16_t>(m_layout.available_ring + 2, index));
    }
    [[nodiscard]] uint16_t used_index() const {
        return *m_memory.read<uint16_t>(m_layout.used_ring + 2);
    }
    // The {id, len} of used ring entry SLOT.
    [[nodiscard]] std::pair<uint32_t, uint32_t> used_element(uint16_t slot) const {
        const uint64_t address = m_layout.used_ring + 4 + 8 * (slot % m_layout.size);
        return {*m_memory.read<uint32_t>(address), *m_memory.read<uint32_t>(address + 4)};
    }

  private:
    const GuestMemory& m_memory;
    QueueLayout m_layout;
    uint16_t m_available_index = 0;
};

}  // namespace pv::vmm::virtio::test
