#include "vmm/micro_vm.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/boot/kernel_loader.hpp"
#include "vmm/boot/layout.hpp"
#include "vmm/boot/mptable.hpp"
#include "vmm/boot/x86_tables.hpp"
#include "vmm/devices/i8042/i8042.hpp"
#include "vmm/devices/serial/serial.hpp"
#include "vmm/x86/vcpu_setup.hpp"

namespace pv::vmm {

namespace {

constexpr uint64_t kMinimumMemoryMib = 32;
constexpr uint64_t kMaximumMemoryMib = 64 * 1024;

Result<std::vector<uint8_t>> read_file(const std::string& path) {
    Fd fd = PV_TRY(Fd::open(path, O_RDONLY));
    struct stat status {};
    if (fstat(fd.get(), &status) != 0)
        return fail(errno_error("stat " + path));
    if (!S_ISREG(status.st_mode))
        return fail(make_error("read " + path, "not a regular file"));
    std::vector<uint8_t> bytes(static_cast<size_t>(status.st_size));
    PV_TRY(pread_all(fd.get(), bytes.data(), bytes.size(), 0, "read " + path));
    return bytes;
}

Result<void> check_config(const VmConfig& config) {
    if (config.memory_mib < kMinimumMemoryMib || config.memory_mib > kMaximumMemoryMib)
        return fail(make_error("check VM config",
                               fmt::format("--mem-mib {} outside {}..{}", config.memory_mib,
                                           kMinimumMemoryMib, kMaximumMemoryMib)));
    if (config.vcpus == 0 || config.vcpus > boot::kMaxMpVcpus)
        return fail(make_error("check VM config", fmt::format("--vcpus {} outside 1..{}",
                                                              config.vcpus, boot::kMaxMpVcpus)));
    return {};
}

}  // namespace

void KvmInterruptLine::set_level(bool high) {
    // A failing KVM_IRQ_LINE means the irqchip is gone; the VM is ending and
    // there is nobody to tell, so the interrupt is dropped.
    (void)m_vm.set_irq_line(m_gsi, high);
}

MicroVm::MicroVm(VmConfig config, GuestMemory memory, kvm::System system, kvm::Vm vm)
    : m_config(std::move(config)),
      m_memory(std::move(memory)),
      m_system(std::move(system)),
      m_vm(std::move(vm)) {}

Result<std::unique_ptr<MicroVm>> MicroVm::create(const VmConfig& config) {
    PV_TRY(check_config(config));
    auto memory =
        PV_TRY(GuestMemory::create(layout::ram_regions(config.memory_mib * layout::kMiB)));
    auto system = PV_TRY(kvm::System::open());
    auto vm = PV_TRY(system.create_vm());
    std::unique_ptr<MicroVm> micro_vm(
        new MicroVm(config, std::move(memory), std::move(system), std::move(vm)));
    PV_TRY(micro_vm->setup_platform());
    PV_TRY(micro_vm->setup_devices());
    PV_TRY(micro_vm->load_and_configure());
    return micro_vm;
}

Result<void> MicroVm::setup_platform() {
    PV_TRY(m_vm.set_tss_address(layout::kKvmTssAddress));
    PV_TRY(m_vm.set_identity_map_address(layout::kKvmIdentityMapAddress));
    uint32_t slot = 0;
    for (const auto& region : m_memory.regions())
        PV_TRY(m_vm.set_memory_region(slot++, region.guest_address, region.size, region.host));
    // The irqchip must exist before the vCPUs so each gets an in-kernel LAPIC.
    PV_TRY(m_vm.create_irqchip());
    PV_TRY(m_vm.create_pit());
    for (uint32_t id = 0; id < m_config.vcpus; ++id)
        m_vcpus.push_back(PV_TRY(m_vm.create_vcpu(id)));
    return {};
}

Result<void> MicroVm::setup_devices() {
    if (!m_config.serial_log_path.empty())
        m_serial_log = PV_TRY(Fd::open(m_config.serial_log_path, O_WRONLY | O_CREAT | O_TRUNC));
    m_serial_interrupt = std::make_unique<KvmInterruptLine>(m_vm, kCom1Irq);
    m_serial =
        std::make_shared<Serial>(*m_serial_interrupt, [this](uint8_t byte) { write_serial(byte); });
    PV_TRY(m_pio_bus.insert(m_serial, kCom1Port, 8));
    auto i8042 = std::make_shared<I8042>(
        [this] { request_stop(ExitReason::Reset, "i8042 reset (0xfe on port 0x64)"); });
    PV_TRY(m_pio_bus.insert(i8042, kI8042DataPort, kI8042CommandPort - kI8042DataPort + 1));
    if (m_config.disk)
        PV_TRY(setup_disk(*m_config.disk));
    return {};
}

Result<void> MicroVm::load_and_configure() {
    auto kernel = PV_TRY(read_file(m_config.kernel_path));
    std::vector<uint8_t> initrd;
    if (!m_config.initrd_path.empty())
        initrd = PV_TRY(read_file(m_config.initrd_path));
    // Devices announce themselves after what the user asked for.
    std::string cmdline = m_config.cmdline;
    if (!cmdline.empty() && !m_virtio_cmdline.empty())
        cmdline += ' ';
    cmdline += m_virtio_cmdline;
    auto loaded = PV_TRY(boot::load_kernel(m_memory, {kernel, initrd, cmdline}));
    PV_TRY(boot::write_gdt(m_memory));
    PV_TRY(boot::write_identity_page_tables(m_memory));
    PV_TRY(boot::write_mptable(m_memory, layout::kMpTableAddress, m_config.vcpus));
    auto supported = PV_TRY(m_system.supported_cpuid());
    x86::BootState state{loaded.entry, layout::kBootParamsAddress, layout::kBootStackPointer};
    for (const auto& vcpu : m_vcpus)
        PV_TRY(x86::configure_vcpu(vcpu, supported, m_config.vcpus, state));
    return {};
}

void MicroVm::write_serial(uint8_t byte) {
    if (m_first_serial_byte_us.load(std::memory_order_relaxed) < 0) {
        auto elapsed = std::chrono::steady_clock::now() - m_start;
        m_first_serial_byte_us.store(
            std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
    }
    if (m_serial_bytes >= m_config.serial_output_limit)
        return;
    ++m_serial_bytes;
    // Unbuffered so the transcript is complete whenever the VM ends, even by
    // a crash of the guest; console output is not a hot path.
    if (m_serial_log.valid())
        (void)!::write(m_serial_log.get(), &byte, 1);
    if (m_config.serial_stdout)
        (void)!::write(STDOUT_FILENO, &byte, 1);
}

void MicroVm::request_stop(ExitReason reason, std::string detail) {
    m_stop.request(reason, std::move(detail));
}

}  // namespace pv::vmm
