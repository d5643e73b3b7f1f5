#include "vmm/virtio/mmio_transport.hpp"

#include <fmt/format.h>

#include <cstring>

namespace pv::vmm::virtio {
namespace {

// §4.2.2, table "MMIO Device Register Layout".
enum Register : uint64_t {
    kMagicValue = 0x000,
    kVersion = 0x004,
    kDeviceId = 0x008,
    kVendorId = 0x00c,
    kDeviceFeatures = 0x010,
    kDeviceFeaturesSel = 0x014,
    kDriverFeatures = 0x020,
    kDriverFeaturesSel = 0x024,
    kQueueSel = 0x030,
    kQueueNumMax = 0x034,
    kQueueNum = 0x038,
    kQueueReady = 0x044,
    kQueueNotify = kQueueNotifyOffset,
    kInterruptStatus = 0x060,
    kInterruptAck = 0x064,
    kStatus = 0x070,
    kQueueDescLow = 0x080,
    kQueueDescHigh = 0x084,
    kQueueDriverLow = 0x090,
    kQueueDriverHigh = 0x094,
    kQueueDeviceLow = 0x0a0,
    kQueueDeviceHigh = 0x0a4,
    kConfigGeneration = 0x0fc,
    kConfig = 0x100,
};

constexpr uint32_t kMagic = 0x74726976;   // "virt"
constexpr uint32_t kVendor = 0x50564d4d;  // "PVMM", any value is allowed

void set_low(uint64_t& field, uint32_t value) {
    field = (field & 0xffffffff00000000ull) | value;
}

void set_high(uint64_t& field, uint32_t value) {
    field = (field & 0xffffffffull) | (uint64_t{value} << 32);
}

}  // namespace

std::string virtio_mmio_command_line(uint64_t base, uint32_t irq) {
    return fmt::format("virtio_mmio.device=4K@{:#x}:{}", base, irq);
}

MmioTransport::MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                             InterruptLine& line, NotifyDelivery delivery)
    : m_device(std::move(device)), m_memory(memory), m_line(line), m_delivery(delivery) {
    for (uint16_t max_size : m_device->queue_max_sizes())
        m_queues.push_back({QueueLayout{}, max_size, false});
}

uint32_t MmioTransport::status() const {
    std::lock_guard lock(m_mutex);
    return current_status();
}

uint32_t MmioTransport::current_status() const {
    return m_status | (m_needs_reset ? kStatusDeviceNeedsReset : 0);
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
    if (offset >= kConfig) {
        std::lock_guard lock(m_mutex);
        m_device->read_config(offset - kConfig, data);
        return;
    }
    // §4.2.2.2: control registers are read 32 bits wide and aligned.
    if (data.size() != 4 || offset % 4 != 0)
        return;
    uint32_t value = 0;
    if (offset == kInterruptStatus) {
        std::lock_guard lock(m_interrupt_mutex);
        value = m_interrupt_status;
    } else {
        std::lock_guard lock(m_mutex);
        value = read_register(offset);
    }
    std::memcpy(data.data(), &value, sizeof(value));
}

uint32_t MmioTransport::read_register(uint64_t offset) {
    switch (offset) {
        case kMagicValue:
            return kMagic;
        case kVersion:
            return 2;
        case kDeviceId:
            return m_device->device_type();
        case kVendorId:
            return kVendor;
        case kDeviceFeatures:
            return m_device_features_select < 2
                       ? static_cast<uint32_t>(offered_features() >>
                                               (32 * m_device_features_select))
                       : 0;
        case kQueueNumMax: {
            const QueueState* queue = selected_queue();
            return queue ? queue->max_size : 0;  // §4.2.2: 0 = queue not available
        }
        case kQueueReady: {
            const QueueState* queue = selected_queue();
            return queue && queue->ready ? 1 : 0;
        }
        case kStatus:
            return current_status();
        case kConfigGeneration:
            return m_config_generation;
        default:
            return 0;
    }
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset >= kConfig) {
        std::lock_guard lock(m_mutex);
        m_device->write_config(offset - kConfig, data);
        return;
    }
    if (data.size() != 4 || offset % 4 != 0)
        return;
    uint32_t value = 0;
    std::memcpy(&value, data.data(), sizeof(value));
    if (offset == kQueueNotify) {
        if (m_delivery == NotifyDelivery::Trapped)
            notify(value);
        return;
    }
    if (offset == kInterruptAck) {
        std::lock_guard lock(m_interrupt_mutex);
        m_interrupt_status &= ~value;
        m_line.set_level(m_interrupt_status != 0);
        return;
    }
    std::lock_guard lock(m_mutex);
    write_register(offset, value);
}

void MmioTransport::notify(uint32_t queue) {
    // Outside the register lock: the device may signal an error, which
    // takes it (§4.2.3.3 notifications carry the queue index).
    bool active = false;
    {
        std::lock_guard lock(m_mutex);
        active = (m_status & kStatusDriverOk) && !m_needs_reset && queue < m_queues.size();
    }
    if (active)
        m_device->queue_notify(static_cast<uint16_t>(queue));
}

void MmioTransport::write_register(uint64_t offset, uint32_t value) {
    // §3.1.1: features are negotiated after DRIVER and before FEATURES_OK.
    const bool negotiating = (m_status & kStatusDriver) && !(m_status & kStatusFeaturesOk);
    switch (offset) {
        case kDeviceFeaturesSel:
            m_device_features_select = value;
            return;
        case kDriverFeaturesSel:
            m_driver_features_select = value;
            return;
        case kDriverFeatures:
            if (negotiating && m_driver_features_select == 0)
                set_low(m_driver_features, value);
            else if (negotiating && m_driver_features_select == 1)
                set_high(m_driver_features, value);
            return;
        case kQueueSel:
            m_queue_select = value;
            return;
        case kStatus:
            write_status(value);
            return;
        default:
            write_queue_register(offset, value);
            return;
    }
}

void MmioTransport::write_queue_register(uint64_t offset, uint32_t value) {
    QueueState* queue = selected_queue();
    // §4.2.2.3: the driver configures a queue before enabling it and before
    // DRIVER_OK; later writes are ignored rather than half-applied.
    if (!queue || queue->ready || (m_status & kStatusDriverOk))
        return;
    QueueLayout& layout = queue->layout;
    switch (offset) {
        case kQueueNum:
            layout.size = static_cast<uint16_t>(value > 0xffff ? 0 : value);
            return;
        case kQueueReady:
            write_queue_ready(value);
            return;
        case kQueueDescLow:
            set_low(layout.descriptor_table, value);
            return;
        case kQueueDescHigh:
            set_high(layout.descriptor_table, value);
            return;
        case kQueueDriverLow:
            set_low(layout.available_ring, value);
            return;
        case kQueueDriverHigh:
            set_high(layout.available_ring, value);
            return;
        case kQueueDeviceLow:
            set_low(layout.used_ring, value);
            return;
        case kQueueDeviceHigh:
            set_high(layout.used_ring, value);
            return;
        default:
            return;
    }
}

void MmioTransport::write_queue_ready(uint32_t value) {
    QueueState* queue = selected_queue();
    if (value != 1)
        return;
    // The ring layout is validated when the queue is enabled; a bad one is
    // refused and QueueReady keeps reading 0.
    queue->ready = Queue::create(m_memory, queue->layout, queue->max_size).has_value();
}

void MmioTransport::write_status(uint32_t value) {
    if (value == 0) {
        reset();  // §4.2.2.1: writing zero resets the device
        return;
    }
    // §2.1.1: the driver never clears a status bit except by a reset, and
    // a device that needs a reset accepts nothing else.
    if ((value & m_status) != m_status || m_needs_reset)
        return;
    const uint32_t added = value & ~m_status;
    const auto requires_bit = [&](uint32_t bit, uint32_t prerequisite) {
        return (added & bit) && !(value & prerequisite);
    };
    // §3.1.1: ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, in that order.
    if (requires_bit(kStatusDriver, kStatusAcknowledge) ||
        requires_bit(kStatusFeaturesOk, kStatusDriver) ||
        requires_bit(kStatusDriverOk, kStatusFeaturesOk) || (added & kStatusDeviceNeedsReset))
        return;
    if (added & kStatusFeaturesOk) {
        // §6.1: a modern driver must accept VERSION_1, and may accept only
        // what was offered; otherwise FEATURES_OK does not stick.
        const bool subset = (m_driver_features & ~offered_features()) == 0;
        if (!subset || !(m_driver_features & kFeatureVersion1))
            value &= ~kStatusFeaturesOk;
    }
    m_status = value;
    if (added & kStatusDriverOk)
        activate();
}

void MmioTransport::activate() {
    std::vector<Queue> queues;
    for (const QueueState& state : m_queues) {
        auto queue = Queue::create(m_memory, state.layout, state.max_size);
        if (!state.ready || !queue) {
            m_needs_reset = true;
            return;
        }
        queues.push_back(std::move(*queue));
    }
    if (!m_device->activate(m_driver_features, std::move(queues), *this))
        m_needs_reset = true;
}

void MmioTransport::reset() {
    m_device->reset();
    m_status = 0;
    m_needs_reset = false;
    m_driver_features = 0;
    m_device_features_select = 0;
    m_driver_features_select = 0;
    m_queue_select = 0;
    for (QueueState& queue : m_queues)
        queue = QueueState{QueueLayout{}, queue.max_size, false};
    std::lock_guard lock(m_interrupt_mutex);
    m_interrupt_status = 0;
    m_line.set_level(false);
}

uint64_t MmioTransport::offered_features() const {
    return m_device->device_features() | kFeatureVersion1 | kFeatureIndirectDescriptors;
}

MmioTransport::QueueState* MmioTransport::selected_queue() {
    return m_queue_select < m_queues.size() ? &m_queues[m_queue_select] : nullptr;
}

void MmioTransport::raise(uint32_t bits) {
    std::lock_guard lock(m_interrupt_mutex);
    m_interrupt_status |= bits;
    m_line.set_level(true);
}

void MmioTransport::signal_used_buffer() {
    raise(kInterruptUsedBuffer);
}

void MmioTransport::signal_device_error() {
    // An atomic flag rather than the register lock: the device calls this
    // while holding its own lock, and reset() takes the two the other way.
    m_needs_reset = true;
    raise(kInterruptConfigChange);
}

}  // namespace pv::vmm::virtio
