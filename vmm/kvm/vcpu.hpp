#pragma once

// RAII owner of a vCPU file descriptor and its shared kvm_run page.

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace pv::vmm::kvm {

class Vcpu {
  public:
    Vcpu(Fd fd, kvm_run* run, size_t run_size, uint32_t id)
        : m_fd(std::move(fd)), m_run(run), m_run_size(run_size), m_id(id) {}
    Vcpu(Vcpu&& other) noexcept;
    Vcpu& operator=(Vcpu&&) = delete;
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;
    ~Vcpu();

    // One KVM_RUN. EINTR is returned as an error with code EINTR (a kick),
    // not retried, so the caller can look at its stop flag.
    [[nodiscard]] Result<void> run() const;

    [[nodiscard]] Result<kvm_regs> get_regs() const;
    [[nodiscard]] Result<void> set_regs(const kvm_regs& regs) const;
    [[nodiscard]] Result<kvm_sregs> get_sregs() const;
    [[nodiscard]] Result<void> set_sregs(const kvm_sregs& sregs) const;
    [[nodiscard]] Result<void> set_fpu(const kvm_fpu& fpu) const;
    [[nodiscard]] Result<void> set_msrs(const std::vector<kvm_msr_entry>& entries) const;
    [[nodiscard]] Result<void> set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) const;
    [[nodiscard]] Result<kvm_lapic_state> get_lapic() const;
    [[nodiscard]] Result<void> set_lapic(const kvm_lapic_state& state) const;

    [[nodiscard]] kvm_run* run_state() const { return m_run; }
    [[nodiscard]] size_t run_size() const { return m_run_size; }
    [[nodiscard]] uint32_t id() const { return m_id; }

  private:
    Fd m_fd;
    kvm_run* m_run;
    size_t m_run_size;
    uint32_t m_id;
};

}  // namespace pv::vmm::kvm
