#pragma once

// A virtio-mmio transport wired to KVM: the window on the MMIO bus, one
// ioeventfd per queue on its QueueNotify register (datamatch on the queue
// index, api.rst KVM_IOEVENTFD) and an irqfd on its GSI (KVM_IRQFD). The
// doorbells are waited on by a Boost.Asio io_context, so device code runs on
// that loop's thread and vCPU threads only run KVM_RUN.

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "vmm/bus/bus.hpp"
#include "vmm/devices/interrupt_line.hpp"
#include "vmm/kvm/vm.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/device.hpp"
#include "vmm/virtio/mmio_transport.hpp"

namespace pv::vmm::virtio {

// A GSI raised through an irqfd. virtio-mmio's interrupt is an edge here:
// each rising set_level pulses the line, and the transport's
// InterruptStatus / InterruptACK registers tell the driver why (§4.2.2), so
// a pulse after an ACK that left bits set is a reminder, never a lost wake-up.
class IrqfdLine final : public InterruptLine {
  public:
    [[nodiscard]] static Result<std::unique_ptr<IrqfdLine>> create(const kvm::Vm& vm, uint32_t gsi);
    void set_level(bool high) override;

  private:
    explicit IrqfdLine(Fd fd) : m_fd(std::move(fd)) {}
    Fd m_fd;
};

struct MmioPlacement {
    uint64_t base = 0;  // guest-physical start of the 4 KiB window
    uint32_t gsi = 0;
};

class KvmMmioDevice {
  public:
    // Puts DEVICE's transport on MMIO_BUS at PLACEMENT and registers its
    // eventfds with VM; doorbells are served on IO. MEMORY, VM and IO must
    // outlive the result.
    [[nodiscard]] static Result<std::unique_ptr<KvmMmioDevice>> create(
        std::shared_ptr<VirtioDevice> device, const GuestMemory& memory, const kvm::Vm& vm,
        Bus& mmio_bus, MmioPlacement placement, boost::asio::io_context& io);

    KvmMmioDevice(const KvmMmioDevice&) = delete;
    KvmMmioDevice& operator=(const KvmMmioDevice&) = delete;

    // "virtio_mmio.device=4K@0xd0000000:5" for the kernel command line.
    [[nodiscard]] std::string command_line() const;
    [[nodiscard]] const MmioTransport& transport() const { return *m_transport; }

  private:
    KvmMmioDevice(MmioPlacement placement, std::unique_ptr<IrqfdLine> line)
        : m_placement(placement), m_line(std::move(line)) {}

    void wait_for_doorbell(size_t queue);

    MmioPlacement m_placement;
    std::unique_ptr<IrqfdLine> m_line;
    std::shared_ptr<MmioTransport> m_transport;
    // One per queue; each owns its eventfd and closes it.
    std::vector<std::unique_ptr<boost::asio::posix::stream_descriptor>> m_doorbells;
};

}  // namespace pv::vmm::virtio
