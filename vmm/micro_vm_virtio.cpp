// The microVM's virtio-mmio devices: placement in the MMIO gap,
// the GSI of each, and the disk served by virtio-blk.

#include <fmt/format.h>

#include "vmm/boot/layout.hpp"
#include "vmm/devices/block/block.hpp"
#include "vmm/devices/block/disk.hpp"
#include "vmm/micro_vm.hpp"

namespace pv::vmm {

Result<void> MicroVm::add_virtio_device(std::shared_ptr<virtio::VirtioDevice> device,
                                        DeviceThread thread) {
    const size_t index = m_virtio_devices.size();
    if (index >= std::size(layout::kVirtioMmioGsis))
        return fail(make_error("add virtio device", fmt::format("more than {} devices", index)));
    const virtio::MmioPlacement placement{layout::kVirtioMmioBase + index * virtio::kMmioWindowSize,
                                          layout::kVirtioMmioGsis[index]};
    auto& io = thread == DeviceThread::DiskIo ? m_disk_io : m_events;
    m_uses_disk_io = m_uses_disk_io || thread == DeviceThread::DiskIo;
    auto wired = PV_TRY(virtio::KvmMmioDevice::create(std::move(device), m_memory, m_vm, m_mmio_bus,
                                                      placement, io));
    if (!m_virtio_cmdline.empty())
        m_virtio_cmdline += ' ';
    m_virtio_cmdline += wired->command_line();
    m_virtio_devices.push_back(std::move(wired));
    return {};
}

Result<void> MicroVm::setup_disk(const DiskConfig& disk) {
    auto opened = PV_TRY(open_disk(disk));
    if (opened.device->size() < kSectorSize)
        return fail(make_error("open disk " + disk.path, "smaller than one sector"));
    BlockOptions options;
    options.access = disk.access;
    if (opened.lock)
        m_disk_lock.emplace(std::move(*opened.lock));
    m_disk = std::make_shared<VirtioBlock>(std::move(opened.device), options);
    return add_virtio_device(m_disk, DeviceThread::DiskIo);
}

Result<void> MicroVm::flush_disk() {
    // The guest may not have flushed; what it wrote must still reach the
    // file (and, for an overlay, its metadata) before the VMM exits.
    if (!m_disk || m_disk->read_only())
        return {};
    auto flushed = m_disk->backend().flush();
    if (!flushed)
        return fail(make_error("flush disk at the end of the run", flushed.error().message()));
    return {};
}

}  // namespace pv::vmm
