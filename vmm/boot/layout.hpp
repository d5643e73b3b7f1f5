#pragma once

// Guest-physical layout of the microVM. Low memory follows the PC conventions
// Linux expects (the x86 boot protocol, Documentation/arch/x86/boot.rst, and
// the MP spec 1.4 section 4 search areas); everything fits below 1 MiB except
// the kernel, the initrd and the command line.

#include <cstdint>
#include <vector>

#include "vmm/memory/guest_memory.hpp"

namespace pv::vmm::layout {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;

inline constexpr uint64_t kGdtAddress = 0x500;
inline constexpr uint64_t kIdtAddress = 0x520;
inline constexpr uint64_t kBootParamsAddress = 0x7000;  // the "zero page"
inline constexpr uint64_t kBootStackPointer = 0x8ff0;
inline constexpr uint64_t kPml4Address = 0x9000;
inline constexpr uint64_t kPdptAddress = 0xa000;
inline constexpr uint64_t kPdAddress = 0xb000;  // 1 GiB of 2 MiB pages
inline constexpr uint64_t kCmdlineAddress = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 0x10000;
// The MP floating pointer goes in the last KiB of base memory (MP spec 1.4
// section 4: one of the three places the OS searches).
inline constexpr uint64_t kMpTableAddress = 0x9fc00;
inline constexpr uint64_t kEbdaStart = 0x9fc00;
inline constexpr uint64_t kHighMemoryStart = 0x100000;  // bzImage 64-bit code at 1 MiB
// 32-bit MMIO hole below 4 GiB: virtio-mmio devices, IOAPIC and LAPIC.
inline constexpr uint64_t kMmioGapStart = 0xd0000000;
inline constexpr uint64_t kMmioGapEnd = 4 * kGiB;
// virtio-mmio transports: 4 KiB windows from the start of the gap, each with
// its own GSI. All are below 16, so KVM's default routing sends them to both
// the PIC (the test guest's) and the IOAPIC pin of the same number, which the
// MP table describes as ISA (edge, active high) interrupts for Linux. 7 is
// skipped (the 8259A reports spurious interrupts there), so are the COM1 (4),
// PIT (0), cascade (2) and RTC (8) lines.
inline constexpr uint64_t kVirtioMmioBase = kMmioGapStart;
inline constexpr uint32_t kVirtioMmioGsis[] = {5, 6, 9, 10, 11, 12, 14, 15};
inline constexpr uint64_t kIoapicAddress = 0xfec00000;
inline constexpr uint64_t kLapicAddress = 0xfee00000;
// KVM needs three pages for the real-mode TSS and one for the identity map
// (api.rst, KVM_SET_TSS_ADDR), inside the MMIO gap where RAM never is.
inline constexpr uint64_t kKvmTssAddress = 0xfffbd000;
inline constexpr uint64_t kKvmIdentityMapAddress = 0xfffbc000;

// RAM regions for `size` bytes of guest memory: one below the MMIO gap and,
// if needed, the rest from 4 GiB up.
[[nodiscard]] inline std::vector<MemoryRegion> ram_regions(uint64_t size) {
    if (size <= kMmioGapStart)
        return {{0, size}};
    return {{0, kMmioGapStart}, {kMmioGapEnd, size - kMmioGapStart}};
}

}  // namespace pv::vmm::layout
