#include "vmm/x86/vcpu_setup.hpp"

#include <cstring>

#include "vmm/boot/x86_tables.hpp"

namespace pv::vmm::x86 {

namespace {

constexpr uint32_t kMsrSysenterCs = 0x174;
constexpr uint32_t kMsrSysenterEsp = 0x175;
constexpr uint32_t kMsrSysenterEip = 0x176;
constexpr uint32_t kMsrStar = 0xc0000081;
constexpr uint32_t kMsrLstar = 0xc0000082;
constexpr uint32_t kMsrCstar = 0xc0000083;
constexpr uint32_t kMsrSyscallMask = 0xc0000084;
constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrMiscEnable = 0x1a0;
constexpr uint32_t kMsrMtrrDefType = 0x2ff;
constexpr uint64_t kMiscEnableFastString = 1;
constexpr uint64_t kMtrrEnable = 1 << 11;
constexpr uint64_t kMtrrTypeWriteBack = 6;

constexpr uint32_t kCpuidHypervisorBit = 1u << 31;  // leaf 1 ECX
constexpr uint32_t kCpuidHtt = 1u << 28;            // leaf 1 EDX

// LAPIC register offsets and delivery modes (Intel SDM vol. 3 10.5.1).
constexpr size_t kApicLvtLint0 = 0x350;
constexpr size_t kApicLvtLint1 = 0x360;
constexpr uint32_t kDeliveryExtInt = 7 << 8;
constexpr uint32_t kDeliveryNmi = 4 << 8;

uint32_t read_apic_register(const kvm_lapic_state& state, size_t offset) {
    uint32_t value;
    std::memcpy(&value, state.regs + offset, sizeof(value));
    return value;
}

void write_apic_register(kvm_lapic_state& state, size_t offset, uint32_t value) {
    std::memcpy(state.regs + offset, &value, sizeof(value));
}

}  // namespace

std::vector<kvm_cpuid_entry2> cpuid_for_vcpu(const std::vector<kvm_cpuid_entry2>& supported,
                                             uint32_t vcpu_id, uint32_t vcpu_count) {
    std::vector<kvm_cpuid_entry2> entries = supported;
    for (auto& entry : entries) {
        switch (entry.function) {
            case 1:
                // EBX[31:24] initial APIC ID, EBX[23:16] logical processors.
                entry.ebx =
                    (entry.ebx & 0x0000ffff) | (vcpu_id << 24) | ((vcpu_count & 0xff) << 16);
                entry.ecx |= kCpuidHypervisorBit;
                if (vcpu_count > 1)
                    entry.edx |= kCpuidHtt;
                break;
            case 0xb:
            case 0x1f:
                // EDX is the x2APIC ID of this logical processor.
                entry.edx = vcpu_id;
                break;
            default:
                break;
        }
    }
    return entries;
}

std::vector<kvm_msr_entry> boot_msrs() {
    auto entry = [](uint32_t index, uint64_t value) {
        kvm_msr_entry msr{};
        msr.index = index;
        msr.data = value;
        return msr;
    };
    return {entry(kMsrSysenterCs, 0),
            entry(kMsrSysenterEsp, 0),
            entry(kMsrSysenterEip, 0),
            entry(kMsrStar, 0),
            entry(kMsrCstar, 0),
            entry(kMsrKernelGsBase, 0),
            entry(kMsrSyscallMask, 0),
            entry(kMsrLstar, 0),
            entry(kMsrTsc, 0),
            entry(kMsrMiscEnable, kMiscEnableFastString),
            entry(kMsrMtrrDefType, kMtrrEnable | kMtrrTypeWriteBack)};
}

Result<void> configure_lapic(const kvm::Vcpu& vcpu) {
    kvm_lapic_state state = PV_TRY(vcpu.get_lapic());
    uint32_t lint0 = read_apic_register(state, kApicLvtLint0);
    write_apic_register(state, kApicLvtLint0, (lint0 & ~0x700u) | kDeliveryExtInt);
    uint32_t lint1 = read_apic_register(state, kApicLvtLint1);
    write_apic_register(state, kApicLvtLint1, (lint1 & ~0x700u) | kDeliveryNmi);
    return vcpu.set_lapic(state);
}

Result<void> configure_vcpu(const kvm::Vcpu& vcpu, const std::vector<kvm_cpuid_entry2>& supported,
                            uint32_t vcpu_count, const BootState& state) {
    PV_TRY(vcpu.set_cpuid(cpuid_for_vcpu(supported, vcpu.id(), vcpu_count)));
    PV_TRY(vcpu.set_msrs(boot_msrs()));
    kvm_fpu fpu{};
    fpu.fcw = 0x37f;     // x87 default control word (FNINIT)
    fpu.mxcsr = 0x1f80;  // all SSE exceptions masked
    PV_TRY(vcpu.set_fpu(fpu));
    PV_TRY(configure_lapic(vcpu));

    kvm_sregs sregs = PV_TRY(vcpu.get_sregs());
    boot::set_long_mode_sregs(sregs);
    PV_TRY(vcpu.set_sregs(sregs));

    kvm_regs regs{};
    regs.rflags = 0x2;  // bit 1 is reserved as one; interrupts off (boot.rst)
    regs.rip = state.entry;
    regs.rsp = state.stack_pointer;
    regs.rbp = state.stack_pointer;
    regs.rsi = state.boot_params;
    return vcpu.set_regs(regs);
}

}  // namespace pv::vmm::x86
