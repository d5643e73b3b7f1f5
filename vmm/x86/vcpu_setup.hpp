#pragma once

// Per-vCPU x86 state at boot: CPUID (from KVM_GET_SUPPORTED_CPUID, adjusted
// per vCPU), MSRs, FPU, the LAPIC's LINT0/LINT1 and the 64-bit register state
// of boot.rst's 64-bit boot protocol.

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "common/error.hpp"
#include "vmm/kvm/vcpu.hpp"

namespace pv::vmm::x86 {

// Sets the APIC IDs of leaf 1 and 0xb, the logical processor count and the
// hypervisor bit. Pure, so it is unit-tested without KVM.
[[nodiscard]] std::vector<kvm_cpuid_entry2> cpuid_for_vcpu(
    const std::vector<kvm_cpuid_entry2>& supported, uint32_t vcpu_id, uint32_t vcpu_count);

// The boot MSR values: SYSENTER/SYSCALL MSRs cleared, TSC 0, fast strings on,
// MTRRs enabled with write-back as default type.
[[nodiscard]] std::vector<kvm_msr_entry> boot_msrs();

// LVT LINT0 as ExtINT (the PIC's output) and LINT1 as NMI: the virtual-wire
// mode of the MP spec 3.6.2.1, so PIC interrupts reach the BSP.
[[nodiscard]] Result<void> configure_lapic(const kvm::Vcpu& vcpu);

struct BootState {
    uint64_t entry;
    uint64_t boot_params;
    uint64_t stack_pointer;
};

// Everything above plus registers: rip = entry, rsi = zero page, long mode.
[[nodiscard]] Result<void> configure_vcpu(const kvm::Vcpu& vcpu,
                                          const std::vector<kvm_cpuid_entry2>& supported,
                                          uint32_t vcpu_count, const BootState& state);

}  // namespace pv::vmm::x86
