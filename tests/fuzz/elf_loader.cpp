// Fuzz target: the ELF kernel loader (vmm/boot/elf.cpp) on hostile
// vmlinux-like files. parse_elf must keep every segment inside the file
// and at or above 1 MiB, with the entry inside a segment; load_kernel must
// then place kernel and initrd inside guest RAM. Input layout: see
// boot_input.hpp.

#include <cstddef>
#include <cstdint>

#include "tests/fuzz/boot_input.hpp"
#include "vmm/boot/elf.hpp"
#include "vmm/boot/layout.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using pv::fuzz::require;
    const pv::fuzz::BootCase boot = pv::fuzz::split_boot_input(data, size);
    auto image = pv::vmm::boot::parse_elf(boot.kernel, pv::vmm::layout::kHighMemoryStart);
    if (image) {
        bool entry_inside = false;
        for (const auto& segment : image->segments) {
            require(segment.file_offset <= boot.kernel.size() &&
                    segment.file_size <= boot.kernel.size() - segment.file_offset);
            require(segment.file_size <= segment.memory_size);
            require(segment.guest_address >= pv::vmm::layout::kHighMemoryStart);
            entry_inside |= image->entry - segment.guest_address < segment.memory_size;
        }
        require(entry_inside);
        (void)pv::vmm::boot::load_elf(pv::fuzz::boot_ram(), boot.kernel, *image);
    }
    pv::fuzz::load_and_check(boot);
    return 0;
}
