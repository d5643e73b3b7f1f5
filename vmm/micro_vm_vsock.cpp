// The microVM's virtio-vsock device with the hybrid Unix-socket backend
// (--vsock-cid, --vsock-uds), served on the event loop with its sockets.

#include "vmm/devices/vsock/unix_backend.hpp"
#include "vmm/devices/vsock/vsock.hpp"
#include "vmm/micro_vm.hpp"

namespace pv::vmm {

Result<void> MicroVm::setup_vsock(const VsockConfig& config) {
    auto backend = PV_TRY(vsock::UnixSocketBackend::create(m_events, config.uds_path));
    vsock::VsockOptions options;
    options.guest_cid = config.guest_cid;
    m_vsock = PV_TRY(vsock::VirtioVsock::create(options, std::move(backend), m_events));
    return add_virtio_device(m_vsock, DeviceThread::Events);
}

}  // namespace pv::vmm
