#include "vmm/devices/block/block.hpp"

#include <algorithm>
#include <cstring>

#include "vmm/devices/block/block_request.hpp"
#include "vmm/virtio/serve_queue.hpp"

namespace pv::vmm {
namespace {

// §5.2.4: offsets in struct virtio_blk_config.
constexpr size_t kConfigCapacity = 0;
constexpr size_t kConfigSegmentMax = 12;
constexpr size_t kConfigBlockSize = 20;
constexpr size_t kConfigMaxDiscardSectors = 36;
constexpr size_t kConfigMaxDiscardSegments = 40;
constexpr size_t kConfigDiscardAlignment = 44;
constexpr size_t kConfigMaxWriteZeroesSectors = 48;
constexpr size_t kConfigMaxWriteZeroesSegments = 52;
constexpr size_t kConfigWriteZeroesMayUnmap = 56;

constexpr uint32_t kMaxSegments = kMaxBlockSegments;
constexpr uint32_t kMaxSegmentSectors = 1u << 22;  // 2 GiB per range
constexpr uint32_t kDiscardAlignmentSectors = 8;   // 4 KiB

template <class T>
void put(std::array<uint8_t, 60>& config, size_t offset, T value) {
    std::memcpy(config.data() + offset, &value, sizeof(value));
}

}  // namespace

VirtioBlock::VirtioBlock(std::unique_ptr<img::BlockDevice> backend, BlockOptions options)
    : m_backend(std::move(backend)),
      m_options(std::move(options)),
      m_read_only(m_options.access == Access::ReadOnly || m_backend->read_only()) {
    put<uint64_t>(m_config, kConfigCapacity, m_backend->size() / kSectorSize);
    // §5.2.4: a chain is at most Queue Size long and needs a header and a
    // status descriptor, which leaves Queue Size - 2 data segments.
    put<uint32_t>(m_config, kConfigSegmentMax, std::max<uint32_t>(m_options.queue_size, 3) - 2);
    put<uint32_t>(m_config, kConfigBlockSize, kSectorSize);
    put<uint32_t>(m_config, kConfigMaxDiscardSectors, kMaxSegmentSectors);
    put<uint32_t>(m_config, kConfigMaxDiscardSegments, kMaxSegments);
    put<uint32_t>(m_config, kConfigDiscardAlignment, kDiscardAlignmentSectors);
    put<uint32_t>(m_config, kConfigMaxWriteZeroesSectors, kMaxSegmentSectors);
    put<uint32_t>(m_config, kConfigMaxWriteZeroesSegments, kMaxSegments);
    put<uint8_t>(m_config, kConfigWriteZeroesMayUnmap, 1);
}

std::vector<uint16_t> VirtioBlock::queue_max_sizes() const {
    return {m_options.queue_size};
}

uint64_t VirtioBlock::device_features() const {
    uint64_t features = kBlockFeatureSegmentMax | kBlockFeatureBlockSize | kBlockFeatureFlush;
    if (m_read_only)
        features |= kBlockFeatureReadOnly;
    else
        features |= kBlockFeatureDiscard | kBlockFeatureWriteZeroes;
    return features;
}

void VirtioBlock::read_config(uint64_t offset, std::span<uint8_t> data) const {
    std::fill(data.begin(), data.end(), 0);
    if (offset >= m_config.size())
        return;
    const size_t count = std::min<uint64_t>(data.size(), m_config.size() - offset);
    std::memcpy(data.data(), m_config.data() + offset, count);
}

void VirtioBlock::write_config(uint64_t, std::span<const uint8_t>) {
    // §5.2.4: only the writeback field is writable, and only with
    // CONFIG_WCE, which this device does not offer.
}

Result<void> VirtioBlock::activate(uint64_t, std::vector<virtio::Queue> queues,
                                   virtio::Interrupt& interrupt) {
    if (queues.size() != 1)
        return fail(make_error("activate virtio-blk", "expected one queue"));
    std::lock_guard lock(m_mutex);
    m_queue.emplace(std::move(queues.front()));
    m_interrupt = &interrupt;
    return {};
}

void VirtioBlock::reset() {
    std::lock_guard lock(m_mutex);
    m_queue.reset();
    m_interrupt = nullptr;
}

uint32_t VirtioBlock::process(const virtio::DescriptorChain& chain, const GuestMemory& memory) {
    const BlockRequestLimits limits{m_read_only, m_options.id, kMaxSegments, kMaxSegmentSectors};
    const auto outcome = serve_block_request(*m_backend, limits, chain, memory);
    if (outcome.fault)
        m_faults[static_cast<size_t>(*outcome.fault)].fetch_add(1, std::memory_order_relaxed);
    return outcome.used;
}

std::array<uint64_t, kBlockFaultCount> VirtioBlock::fault_counts() const {
    std::array<uint64_t, kBlockFaultCount> counts{};
    for (size_t fault = 0; fault < kBlockFaultCount; ++fault)
        counts[fault] = m_faults[fault].load(std::memory_order_relaxed);
    return counts;
}

void VirtioBlock::queue_notify(uint16_t queue) {
    std::lock_guard lock(m_mutex);
    if (queue != 0 || !m_queue)
        return;
    const auto serve = [this](const virtio::DescriptorChain* chain) -> uint32_t {
        return chain ? process(*chain, m_queue->memory()) : 0;
    };
    virtio::serve_queue(*m_queue, *m_interrupt, serve);
}

}  // namespace pv::vmm
