#pragma once

// ELF64 kernel images (vmlinux and the test guest): PT_LOAD segments go to
// their physical addresses (p_paddr) and the vCPU starts at e_entry in 64-bit
// mode, as for vmlinux in Linux's 64-bit boot protocol (boot.rst).

#include <cstdint>
#include <span>
#include <vector>

#include "common/error.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace pv::vmm::boot {

struct ElfSegment {
    uint64_t file_offset;
    uint64_t file_size;
    uint64_t memory_size;
    uint64_t guest_address;
};

struct ElfImage {
    uint64_t entry;
    std::vector<ElfSegment> segments;
    uint64_t lowest_address;
    uint64_t highest_address;  // one past the last byte of any segment
};

[[nodiscard]] bool is_elf(std::span<const uint8_t> file);

// Validates the header and program headers of an x86_64 executable against
// the file size; segments must lie at or above `minimum_address` (so a
// hostile image cannot overwrite the zero page or the page tables) and the
// entry must be inside a segment. Touches no guest memory.
[[nodiscard]] Result<ElfImage> parse_elf(std::span<const uint8_t> file, uint64_t minimum_address);

// Copies each segment and zeroes its bss tail; every range is bounds-checked
// by GuestMemory.
[[nodiscard]] Result<void> load_elf(const GuestMemory& memory, std::span<const uint8_t> file,
                                    const ElfImage& image);

}  // namespace pv::vmm::boot
