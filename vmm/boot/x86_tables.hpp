#pragma once

// The CPU state Linux's 64-bit boot protocol asks for (boot.rst, "64-bit Boot
// Protocol"): identity-mapped page tables, a GDT with flat __BOOT_CS (0x10)
// and __BOOT_DS (0x18), and long mode with paging on.

#include <linux/kvm.h>

#include <array>
#include <cstdint>

#include "common/error.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace pv::vmm::boot {

inline constexpr uint16_t kBootCodeSelector = 0x10;
inline constexpr uint16_t kBootDataSelector = 0x18;
inline constexpr uint16_t kBootTssSelector = 0x20;

// Builds a GDT descriptor from base, limit and the 12 flag bits (access byte
// in bits 0-7, granularity/size/long nibble in bits 12-15), Intel SDM vol. 3
// section 3.4.5.
[[nodiscard]] uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);

// Null, null, code (0x10), data (0x18), TSS (0x20).
[[nodiscard]] std::array<uint64_t, 5> boot_gdt();

// The hidden part of a segment register that KVM_SET_SREGS takes, decoded
// from a GDT entry so the two never disagree.
[[nodiscard]] kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector);

// Writes the GDT and an empty IDT to guest memory.
[[nodiscard]] Result<void> write_gdt(const GuestMemory& memory);

// PML4 -> one PDPT -> one PD of 512 2 MiB pages: identity maps the first
// GiB, which covers the zero page, command line, kernel and initrd.
[[nodiscard]] Result<void> write_identity_page_tables(const GuestMemory& memory);

// Long mode, paging, PAE, the boot GDT in the segment registers.
void set_long_mode_sregs(kvm_sregs& sregs);

}  // namespace pv::vmm::boot
