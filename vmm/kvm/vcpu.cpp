#include "vmm/kvm/vcpu.hpp"

#include <sys/mman.h>

#include <memory>
#include <utility>

#include "vmm/kvm/ioctl.hpp"

namespace pv::vmm::kvm {

Vcpu::Vcpu(Vcpu&& other) noexcept
    : m_fd(std::move(other.m_fd)),
      m_run(std::exchange(other.m_run, nullptr)),
      m_run_size(other.m_run_size),
      m_id(other.m_id) {}

Vcpu::~Vcpu() {
    if (m_run)
        munmap(m_run, m_run_size);
}

Result<void> Vcpu::run() const {
    if (::ioctl(m_fd.get(), KVM_RUN, 0) < 0)
        return fail(errno_error("KVM_RUN"));
    return {};
}

Result<kvm_regs> Vcpu::get_regs() const {
    kvm_regs regs{};
    PV_TRY(checked_ioctl(m_fd.get(), KVM_GET_REGS, "KVM_GET_REGS", &regs));
    return regs;
}

Result<void> Vcpu::set_regs(const kvm_regs& regs) const {
    PV_TRY(checked_ioctl(m_fd.get(), KVM_SET_REGS, "KVM_SET_REGS", &regs));
    return {};
}

Result<kvm_sregs> Vcpu::get_sregs() const {
    kvm_sregs sregs{};
    PV_TRY(checked_ioctl(m_fd.get(), KVM_GET_SREGS, "KVM_GET_SREGS", &sregs));
    return sregs;
}

Result<void> Vcpu::set_sregs(const kvm_sregs& sregs) const {
    PV_TRY(checked_ioctl(m_fd.get(), KVM_SET_SREGS, "KVM_SET_SREGS", &sregs));
    return {};
}

Result<void> Vcpu::set_fpu(const kvm_fpu& fpu) const {
    PV_TRY(checked_ioctl(m_fd.get(), KVM_SET_FPU, "KVM_SET_FPU", &fpu));
    return {};
}

Result<void> Vcpu::set_msrs(const std::vector<kvm_msr_entry>& entries) const {
    ArrayBuffer<kvm_msr_entry> buffer(static_cast<uint32_t>(entries.size()));
    std::copy(entries.begin(), entries.end(), buffer.entries());
    // KVM_SET_MSRS returns how many it set; fewer means one was refused.
    int set = PV_TRY(checked_ioctl(m_fd.get(), kSetMsrs, "KVM_SET_MSRS", buffer.data()));
    if (set != static_cast<int>(entries.size()))
        return fail(
            make_error("KVM_SET_MSRS", "MSR " + std::to_string(entries[set].index) + " refused"));
    return {};
}

Result<void> Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) const {
    ArrayBuffer<kvm_cpuid_entry2> buffer(static_cast<uint32_t>(entries.size()));
    std::copy(entries.begin(), entries.end(), buffer.entries());
    PV_TRY(checked_ioctl(m_fd.get(), kSetCpuid2, "KVM_SET_CPUID2", buffer.data()));
    return {};
}

Result<kvm_lapic_state> Vcpu::get_lapic() const {
    kvm_lapic_state state{};
    PV_TRY(checked_ioctl(m_fd.get(), KVM_GET_LAPIC, "KVM_GET_LAPIC", &state));
    return state;
}

Result<void> Vcpu::set_lapic(const kvm_lapic_state& state) const {
    PV_TRY(checked_ioctl(m_fd.get(), KVM_SET_LAPIC, "KVM_SET_LAPIC", &state));
    return {};
}

}  // namespace pv::vmm::kvm
