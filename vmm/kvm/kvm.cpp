#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>

#include <cstring>
#include <memory>

#include "vmm/kvm/ioctl.hpp"
#include "vmm/kvm/system.hpp"
#include "vmm/kvm/vcpu.hpp"
#include "vmm/kvm/vm.hpp"

namespace pv::vmm::kvm {

Result<System> System::open(const std::string& path) {
    System system;
    system.m_fd = PV_TRY(Fd::open(path, O_RDWR));
    int version = PV_TRY(checked_ioctl(system.fd(), KVM_GET_API_VERSION, "KVM_GET_API_VERSION", 0));
    if (version != KVM_API_VERSION)
        return fail(make_error("KVM_GET_API_VERSION", fmt::format("version {} != 12", version)));
    for (auto [capability, name] :
         {std::pair{KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"}, std::pair{KVM_CAP_PIT2, "KVM_CAP_PIT2"},
          std::pair{KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
          std::pair{KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
          std::pair{KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"}}) {
        if (PV_TRY(system.check_extension(capability)) <= 0)
            return fail(make_error("KVM_CHECK_EXTENSION", fmt::format("{} missing", name)));
    }
    int size =
        PV_TRY(checked_ioctl(system.fd(), KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE", 0));
    if (size < static_cast<int>(sizeof(kvm_run)))
        return fail(make_error("KVM_GET_VCPU_MMAP_SIZE", fmt::format("too small: {}", size)));
    system.m_vcpu_mmap_size = static_cast<size_t>(size);
    return system;
}

Result<int> System::check_extension(int capability) const {
    return checked_ioctl(fd(), KVM_CHECK_EXTENSION, "KVM_CHECK_EXTENSION", capability);
}

Result<Vm> System::create_vm() const {
    int vm_fd = PV_TRY(checked_ioctl(fd(), KVM_CREATE_VM, "KVM_CREATE_VM", 0));
    return Vm(Fd(vm_fd), m_vcpu_mmap_size);
}

Result<std::vector<kvm_cpuid_entry2>> System::supported_cpuid() const {
    // KVM answers E2BIG when the buffer is too small; 256 entries is what
    // current kernels need at most, grow once more to be safe.
    for (uint32_t capacity : {256u, 1024u}) {
        ArrayBuffer<kvm_cpuid_entry2> buffer(capacity);
        if (::ioctl(fd(), kGetSupportedCpuid, buffer.data()) == 0)
            return std::vector<kvm_cpuid_entry2>(buffer.entries(),
                                                 buffer.entries() + buffer.header().count);
        if (errno != E2BIG)
            return fail(errno_error("KVM_GET_SUPPORTED_CPUID"));
    }
    return fail(make_error("KVM_GET_SUPPORTED_CPUID", "more than 1024 entries"));
}

Result<void> Vm::set_tss_address(uint64_t address) const {
    PV_TRY(checked_ioctl(fd(), KVM_SET_TSS_ADDR, "KVM_SET_TSS_ADDR", address));
    return {};
}

Result<void> Vm::set_identity_map_address(uint64_t address) const {
    PV_TRY(checked_ioctl(fd(), KVM_SET_IDENTITY_MAP_ADDR, "KVM_SET_IDENTITY_MAP_ADDR", &address));
    return {};
}

Result<void> Vm::set_memory_region(uint32_t slot, uint64_t guest_address, uint64_t size,
                                   void* host) const {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.guest_phys_addr = guest_address;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(host);
    PV_TRY(checked_ioctl(fd(), KVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION", &region));
    return {};
}

Result<void> Vm::create_irqchip() const {
    PV_TRY(checked_ioctl(fd(), KVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP", 0));
    return {};
}

Result<void> Vm::create_pit() const {
    kvm_pit_config config{};
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    PV_TRY(checked_ioctl(fd(), KVM_CREATE_PIT2, "KVM_CREATE_PIT2", &config));
    return {};
}

Result<void> Vm::set_irq_line(uint32_t gsi, bool level) const {
    kvm_irq_level irq{};
    irq.irq = gsi;
    irq.level = level ? 1 : 0;
    PV_TRY(checked_ioctl(fd(), KVM_IRQ_LINE, "KVM_IRQ_LINE", &irq));
    return {};
}

Result<void> Vm::add_ioeventfd(uint64_t address, uint32_t length, int event_fd,
                               std::optional<uint64_t> datamatch) const {
    kvm_ioeventfd ioeventfd{};
    ioeventfd.addr = address;
    ioeventfd.len = length;
    ioeventfd.fd = event_fd;
    if (datamatch) {
        ioeventfd.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
        ioeventfd.datamatch = *datamatch;
    }
    PV_TRY(checked_ioctl(fd(), KVM_IOEVENTFD, "KVM_IOEVENTFD", &ioeventfd));
    return {};
}

Result<void> Vm::add_irqfd(uint32_t gsi, int event_fd) const {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(event_fd);
    irqfd.gsi = gsi;
    PV_TRY(checked_ioctl(fd(), KVM_IRQFD, "KVM_IRQFD", &irqfd));
    return {};
}

Result<Vcpu> Vm::create_vcpu(uint32_t id) const {
    int vcpu_fd = PV_TRY(checked_ioctl(fd(), KVM_CREATE_VCPU, "KVM_CREATE_VCPU", id));
    Fd owner(vcpu_fd);
    void* run = mmap(nullptr, m_vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
    if (run == MAP_FAILED)
        return fail(errno_error(fmt::format("mmap kvm_run of vCPU {}", id)));
    return Vcpu(std::move(owner), static_cast<kvm_run*>(run), m_vcpu_mmap_size, id);
}

}  // namespace pv::vmm::kvm
