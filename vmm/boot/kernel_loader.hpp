#pragma once

// Puts a kernel, an optional initrd and the command line into guest memory and
// fills the zero page, per the Linux x86 boot protocol (boot.rst). Accepts an
// ELF (vmlinux or the test guest) or a bzImage, told apart by their magic.

#include <cstdint>
#include <span>
#include <string>

#include "common/error.hpp"
#include "vmm/boot/boot_params.hpp"
#include "vmm/memory/guest_memory.hpp"

namespace pv::vmm::boot {

enum class KernelFormat { Elf, BzImage };

struct BootInputs {
    std::span<const uint8_t> kernel;
    std::span<const uint8_t> initrd;  // empty: no initrd
    std::string cmdline;
};

struct LoadedKernel {
    KernelFormat format;
    uint64_t entry;       // 64-bit entry point (guest physical, identity mapped)
    uint64_t kernel_end;  // one past the highest kernel byte
    uint64_t initrd_address;
    uint64_t initrd_size;
};

// Highest page-aligned address where `size` bytes end at or below
// min(ram_end, max_address + 1) and start at or above `lowest`.
[[nodiscard]] Result<uint64_t> place_initrd(uint64_t size, uint64_t lowest, uint64_t ram_end,
                                            uint64_t max_address);

// Loads everything and writes boot_params at layout::kBootParamsAddress.
[[nodiscard]] Result<LoadedKernel> load_kernel(const GuestMemory& memory, const BootInputs& inputs);

}  // namespace pv::vmm::boot
