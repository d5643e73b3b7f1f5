#pragma once

// Shared by the kernel loader fuzz targets (elf_loader, bzimage_loader):
// cuts the input into a command line, an initrd choice and a kernel file,
// runs load_kernel into 32 MiB of plain guest RAM and checks what it
// promises about where things landed.
//
// Input: byte 0 bit 7 asks for an 8 KiB initrd, bits 0-6 give the command
// line's length; then the command line, then the kernel file.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_input.hpp"
#include "tests/fuzz/guest_ram.hpp"
#include "vmm/boot/kernel_loader.hpp"

namespace pv::fuzz {

struct BootCase {
    std::string cmdline;
    bool with_initrd = false;
    std::span<const uint8_t> kernel;
};

inline BootCase split_boot_input(const uint8_t* data, size_t size) {
    Input input(data, size);
    BootCase boot;
    const uint8_t control = input.take_byte();
    boot.with_initrd = (control & 0x80) != 0;
    boot.cmdline = std::string(input.take(control & 0x7f));
    const std::string_view rest = input.rest();
    boot.kernel = {reinterpret_cast<const uint8_t*>(rest.data()), rest.size()};
    return boot;
}

// Guest RAM is not cleared between runs: the loaders only write to it.
inline const vmm::GuestMemory& boot_ram() {
    static const vmm::GuestMemory memory = make_guest_ram({{0, 32 << 20}});
    return memory;
}

// Returns what load_kernel reported, if it succeeded.
inline std::optional<vmm::boot::LoadedKernel> load_and_check(const BootCase& boot) {
    static const std::vector<uint8_t> initrd(8192, 0x5a);
    const vmm::GuestMemory& memory = boot_ram();
    vmm::boot::BootInputs inputs{boot.kernel, {}, boot.cmdline};
    if (boot.with_initrd)
        inputs.initrd = initrd;
    auto loaded = vmm::boot::load_kernel(memory, inputs);
    if (!loaded)
        return std::nullopt;
    require(loaded->kernel_end <= memory.total_size());
    if (boot.with_initrd) {
        require(loaded->initrd_size == initrd.size());
        require(loaded->initrd_address >= loaded->kernel_end);
        require(loaded->initrd_address + loaded->initrd_size <= memory.total_size());
    }
    return *loaded;
}

}  // namespace pv::fuzz
