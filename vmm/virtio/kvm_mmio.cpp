#include "vmm/virtio/kvm_mmio.hpp"

#include <unistd.h>

#include "vmm/kvm/eventfd.hpp"

namespace pv::vmm::virtio {

Result<std::unique_ptr<IrqfdLine>> IrqfdLine::create(const kvm::Vm& vm, uint32_t gsi) {
    Fd fd = PV_TRY(kvm::make_eventfd());
    PV_TRY(vm.add_irqfd(gsi, fd.get()));
    return std::unique_ptr<IrqfdLine>(new IrqfdLine(std::move(fd)));
}

void IrqfdLine::set_level(bool high) {
    if (!high)
        return;  // the pulse already went low again inside KVM
    const uint64_t one = 1;
    // The only failure is a counter at its maximum, which still means
    // "interrupt pending"; nothing to report.
    (void)!::write(m_fd.get(), &one, sizeof(one));
}

Result<std::unique_ptr<KvmMmioDevice>> KvmMmioDevice::create(std::shared_ptr<VirtioDevice> device,
                                                             const GuestMemory& memory,
                                                             const kvm::Vm& vm, Bus& mmio_bus,
                                                             MmioPlacement placement,
                                                             boost::asio::io_context& io) {
    auto line = PV_TRY(IrqfdLine::create(vm, placement.gsi));
    std::unique_ptr<KvmMmioDevice> wired(new KvmMmioDevice(placement, std::move(line)));
    wired->m_transport = std::make_shared<MmioTransport>(std::move(device), memory, *wired->m_line,
                                                         NotifyDelivery::EventFd);
    for (size_t queue = 0; queue < wired->m_transport->queue_count(); ++queue) {
        Fd doorbell = PV_TRY(kvm::make_eventfd());
        // §4.2.3.3: the driver writes the queue index, 32 bits wide.
        PV_TRY(vm.add_ioeventfd(placement.base + kQueueNotifyOffset, 4, doorbell.get(), queue));
        wired->m_doorbells.push_back(
            std::make_unique<boost::asio::posix::stream_descriptor>(io, doorbell.release()));
    }
    PV_TRY(mmio_bus.insert(wired->m_transport, placement.base, kMmioWindowSize));
    for (size_t queue = 0; queue < wired->m_doorbells.size(); ++queue)
        wired->wait_for_doorbell(queue);
    return wired;
}

std::string KvmMmioDevice::command_line() const {
    return virtio_mmio_command_line(m_placement.base, m_placement.gsi);
}

void KvmMmioDevice::wait_for_doorbell(size_t queue) {
    m_doorbells[queue]->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                   [this, queue](const boost::system::error_code& error) {
                                       if (error)
                                           return;  // cancelled: the VM is going away
                                       // Reading resets the counter; several notifications since
                                       // the last wake-up are one, as the device drains the whole
                                       // queue.
                                       uint64_t count = 0;
                                       (void)!::read(m_doorbells[queue]->native_handle(), &count,
                                                     sizeof(count));
                                       m_transport->notify(static_cast<uint32_t>(queue));
                                       wait_for_doorbell(queue);
                                   });
}

}  // namespace pv::vmm::virtio
