#pragma once

// The seam between a virtio transport and a virtio device (
// after Cloud Hypervisor's VirtioDevice and kvmtool's virtio ops): a device
// says what it is, which features and queues it has and what its config
// space holds, and processes queues once activated. Register offsets, the
// status state machine and feature selection windows live in the transport.

#include <cstdint>
#include <span>
#include <vector>

#include "common/error.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/queue.hpp"

namespace pv::vmm::virtio {

// §5: device IDs used by patchvisor.
inline constexpr uint32_t kDeviceIdBlock = 2;
inline constexpr uint32_t kDeviceIdVsock = 19;

// §6: feature bits every modern device offers through the transport.
inline constexpr uint64_t kFeatureIndirectDescriptors = uint64_t{1} << 28;
inline constexpr uint64_t kFeatureVersion1 = uint64_t{1} << 32;

// How a device tells the driver about progress (§2.3 notifications). The
// transport implements it with its interrupt status register and line.
class Interrupt {
  public:
    virtual ~Interrupt() = default;
    // §2.7.10: the device has put buffers into a used ring.
    virtual void signal_used_buffer() = 0;
    // §2.1.2: the device hit an error it cannot recover from
    // (DEVICE_NEEDS_RESET plus a configuration change notification).
    virtual void signal_device_error() = 0;
};

class VirtioDevice {
  public:
    virtual ~VirtioDevice() = default;

    [[nodiscard]] virtual uint32_t device_type() const = 0;
    // One entry per queue: the largest Queue Size the device accepts.
    [[nodiscard]] virtual std::vector<uint16_t> queue_max_sizes() const = 0;
    // Device-specific feature bits; the transport adds VERSION_1 and friends.
    [[nodiscard]] virtual uint64_t device_features() const = 0;

    // Device configuration space (§4.2.2 offset 0x100 onwards). Reads beyond
    // the space return zeroes; the transport passes any width the driver used.
    virtual void read_config(uint64_t offset, std::span<uint8_t> data) const = 0;
    virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;

    // Called at DRIVER_OK with the negotiated features and one validated
    // queue per entry of queue_max_sizes(); MEMORY and INTERRUPT outlive the
    // activation. An error makes the transport set DEVICE_NEEDS_RESET.
    [[nodiscard]] virtual Result<void> activate(uint64_t acked_features, std::vector<Queue> queues,
                                                Interrupt& interrupt) = 0;
    // §2.4: forget the queues and return to the initial state.
    virtual void reset() = 0;
    // The driver wrote QUEUE to QueueNotify (§4.2.3.3); only after activate.
    virtual void queue_notify(uint16_t queue) = 0;
};

}  // namespace pv::vmm::virtio
