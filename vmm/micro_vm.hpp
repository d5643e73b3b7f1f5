#pragma once

// One microVM: guest memory, the KVM VM with its in-kernel irqchip and PIT,
// the buses and devices, the vCPUs, and the threads that run them (one per
// vCPU running KVM_RUN, one Boost.Asio event loop). Built by create(), run
// once by run(); request_stop() works from any thread.

#include <pthread.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "imgfmt/lock.hpp"
#include "vmm/bus/bus.hpp"
#include "vmm/devices/interrupt_line.hpp"
#include "vmm/kvm/system.hpp"
#include "vmm/kvm/vcpu.hpp"
#include "vmm/kvm/vm.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/stop_controller.hpp"
#include "vmm/virtio/device.hpp"
#include "vmm/virtio/kvm_mmio.hpp"
#include "vmm/vm_config.hpp"

namespace pv::vmm {

class Serial;
class VirtioBlock;
namespace vsock {
class VirtioVsock;
}

// Which thread serves a virtio device's doorbells. Disk requests block in
// pread/pwrite/fdatasync (a flush of an overlay can take tens of ms), so
// they get a thread of their own and never stall the event loop, where
// sockets (vsock) and timers live.
enum class DeviceThread { Events, DiskIo };

// A GSI of the in-kernel irqchip driven with KVM_IRQ_LINE.
class KvmInterruptLine final : public InterruptLine {
  public:
    KvmInterruptLine(const kvm::Vm& vm, uint32_t gsi) : m_vm(vm), m_gsi(gsi) {}
    void set_level(bool high) override;

  private:
    const kvm::Vm& m_vm;
    uint32_t m_gsi;
};

class MicroVm {
  public:
    [[nodiscard]] static Result<std::unique_ptr<MicroVm>> create(const VmConfig& config);

    MicroVm(const MicroVm&) = delete;
    MicroVm& operator=(const MicroVm&) = delete;

    // Runs until the guest resets or powers off, the timeout passes, an
    // unrecoverable exit happens or request_stop() is called. vCPU 0 runs on
    // the calling thread. Kicks out of KVM_RUN use SIGRTMIN, for which run()
    // installs a no-op handler (process-wide: embedders must leave it alone).
    // A MicroVm runs once; a second call is an error.
    [[nodiscard]] Result<RunSummary> run();
    void request_stop(ExitReason reason, std::string detail);

    [[nodiscard]] const GuestMemory& memory() const { return m_memory; }
    [[nodiscard]] Bus& pio_bus() { return m_pio_bus; }
    [[nodiscard]] Bus& mmio_bus() { return m_mmio_bus; }
    [[nodiscard]] const kvm::Vm& vm() const { return m_vm; }
    // The event loop run() drives on its own thread: devices wired after
    // create() (virtio-mmio) register their ioeventfds, sockets and
    // timers here.
    [[nodiscard]] boost::asio::io_context& events() { return m_events; }

  private:
    MicroVm(VmConfig config, GuestMemory memory, kvm::System system, kvm::Vm vm);

    [[nodiscard]] Result<void> setup_platform();
    [[nodiscard]] Result<void> setup_devices();
    // Wires DEVICE as the next virtio-mmio transport (window, GSI, ioeventfds,
    // irqfd) and announces it on the kernel command line. Before
    // load_and_configure, i.e. from setup_devices.
    [[nodiscard]] Result<void> add_virtio_device(std::shared_ptr<virtio::VirtioDevice> device,
                                                 DeviceThread thread = DeviceThread::Events);
    [[nodiscard]] Result<void> setup_disk(const DiskConfig& disk);
    [[nodiscard]] Result<void> flush_disk();
    [[nodiscard]] Result<void> setup_vsock(const VsockConfig& vsock);
    [[nodiscard]] Result<void> load_and_configure();
    void write_serial(uint8_t byte);
    void kick_vcpus();
    void run_vcpu(size_t index);
    // Installs ROLE's seccomp filter on the calling thread if the config asks
    // for it; on failure stops the VM and returns false.
    [[nodiscard]] bool confine_thread(confine::ThreadRole role);
    // Raises the configured RLIMIT_FSIZE so the disk image may still grow.
    [[nodiscard]] Result<void> size_file_limit_for_disk();
    // Handles one KVM_RUN exit; false when the vCPU must stop.
    [[nodiscard]] bool handle_exit(const kvm::Vcpu& vcpu);
    [[nodiscard]] bool handle_io(const kvm::Vcpu& vcpu);
    void stop_with_registers(const kvm::Vcpu& vcpu, ExitReason reason, std::string what);
    [[nodiscard]] RunSummary summarize(std::chrono::steady_clock::time_point start) const;

    VmConfig m_config;
    GuestMemory m_memory;
    kvm::System m_system;
    kvm::Vm m_vm;
    std::vector<kvm::Vcpu> m_vcpus;
    // Before the buses: the lock is released only after the transports (and
    // with them the disk) are gone.
    std::optional<img::ImageLock> m_disk_lock;
    Bus m_pio_bus;
    Bus m_mmio_bus;
    std::unique_ptr<KvmInterruptLine> m_serial_interrupt;
    std::shared_ptr<Serial> m_serial;
    Fd m_serial_log;
    StopController m_stop;
    ExitCounters m_counters;
    boost::asio::io_context m_events;
    boost::asio::io_context m_disk_io;
    bool m_uses_disk_io = false;
    // After the io_contexts: their doorbell descriptors go first.
    std::vector<std::unique_ptr<virtio::KvmMmioDevice>> m_virtio_devices;
    std::string m_virtio_cmdline;  // "virtio_mmio.device=..." per device, space-separated
    std::shared_ptr<VirtioBlock> m_disk;
    // After m_events: its sockets must close before the loop is destroyed.
    std::shared_ptr<vsock::VirtioVsock> m_vsock;
    uint64_t m_serial_bytes = 0;  // output so far; only touched under the Serial lock

    std::mutex m_threads_mutex;
    std::vector<pthread_t> m_vcpu_threads;  // for kicks; guarded by m_threads_mutex
    std::chrono::steady_clock::time_point m_start;
    bool m_ran = false;
    std::atomic<int64_t> m_first_serial_byte_us{-1};
    // /proc/self/status, opened before confinement forbids open(), read for
    // the peak RSS at the end.
    Fd m_proc_status;
};

}  // namespace pv::vmm
