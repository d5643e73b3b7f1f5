#pragma once

// The virtio-mmio transport, version 2 (virtio 1.2 §4.2.2), as a BusDevice on
// the MMIO bus. It alone knows the register layout; it runs the device status
// state machine (§2.1, §3.1.1), feature negotiation and queue setup, and
// hands validated queues to the VirtioDevice at DRIVER_OK.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vmm/bus/bus.hpp"
#include "vmm/devices/interrupt_line.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/device.hpp"

namespace pv::vmm::virtio {

// §4.2.2: each transport occupies a 4 KiB window (config space included).
inline constexpr uint64_t kMmioWindowSize = 0x1000;
// §4.2.2: the QueueNotify register, the doorbell an ioeventfd watches.
inline constexpr uint64_t kQueueNotifyOffset = 0x050;

// §2.1: device status bits.
inline constexpr uint32_t kStatusAcknowledge = 1;
inline constexpr uint32_t kStatusDriver = 2;
inline constexpr uint32_t kStatusDriverOk = 4;
inline constexpr uint32_t kStatusFeaturesOk = 8;
inline constexpr uint32_t kStatusDeviceNeedsReset = 64;
inline constexpr uint32_t kStatusFailed = 128;

// §4.2.2: InterruptStatus bits.
inline constexpr uint32_t kInterruptUsedBuffer = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

// "virtio_mmio.device=4K@0xd0000000:5", how Linux learns about a transport
// without a device tree (drivers/virtio/virtio_mmio.c).
[[nodiscard]] std::string virtio_mmio_command_line(uint64_t base, uint32_t irq);

// Who hands QueueNotify writes to the device. Under KVM the VMM registers an
// ioeventfd per queue (datamatch on the queue index) and calls notify() from
// its I/O thread, so a vCPU thread never runs device code; a trapped write
// that no ioeventfd matched names no queue and is dropped.
enum class NotifyDelivery { Trapped, EventFd };

class MmioTransport final : public BusDevice, private Interrupt {
  public:
    // MEMORY and LINE must outlive the transport.
    MmioTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                  InterruptLine& line, NotifyDelivery delivery = NotifyDelivery::Trapped);

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    [[nodiscard]] uint32_t status() const;
    [[nodiscard]] size_t queue_count() const { return m_queues.size(); }
    // §4.2.3.3: the driver notified QUEUE. Ignored before DRIVER_OK, while
    // the device needs a reset and for a queue that does not exist.
    void notify(uint32_t queue);

  private:
    struct QueueState {
        QueueLayout layout;
        uint16_t max_size = 0;
        bool ready = false;
    };

    void signal_used_buffer() override;
    void signal_device_error() override;
    void raise(uint32_t bits);

    [[nodiscard]] uint32_t current_status() const;
    [[nodiscard]] uint32_t read_register(uint64_t offset);
    void write_register(uint64_t offset, uint32_t value);
    void write_queue_register(uint64_t offset, uint32_t value);
    void write_status(uint32_t value);
    void write_queue_ready(uint32_t value);
    void activate();
    void reset();
    [[nodiscard]] uint64_t offered_features() const;
    [[nodiscard]] QueueState* selected_queue();

    std::shared_ptr<VirtioDevice> m_device;
    const GuestMemory& m_memory;
    InterruptLine& m_line;
    NotifyDelivery m_delivery;

    mutable std::mutex m_mutex;  // guards the register state below
    uint32_t m_status = 0;
    // §2.1.2 DEVICE_NEEDS_RESET, kept apart from m_status (see signal_device_error).
    std::atomic<bool> m_needs_reset{false};
    uint32_t m_device_features_select = 0;
    uint32_t m_driver_features_select = 0;
    uint64_t m_driver_features = 0;
    uint32_t m_queue_select = 0;
    uint32_t m_config_generation = 0;
    std::vector<QueueState> m_queues;

    std::mutex m_interrupt_mutex;  // devices signal from their own threads
    uint32_t m_interrupt_status = 0;
};

}  // namespace pv::vmm::virtio
