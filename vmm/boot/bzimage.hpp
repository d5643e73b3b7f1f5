#pragma once

// bzImage per the Linux x86 boot protocol (Documentation/arch/x86/boot.rst):
// the setup header at 0x1f1, the protected-mode kernel after the setup
// sectors, loaded at 1 MiB and entered at +0x200 (the 64-bit entry point).

#include <cstdint>
#include <span>

#include "common/error.hpp"
#include "vmm/boot/boot_params.hpp"

namespace pv::vmm::boot {

inline constexpr uint64_t kBzImageLoadAddress = 0x100000;
inline constexpr uint64_t kBzImage64BitEntryOffset = 0x200;
inline constexpr uint16_t kMinimumBootProtocol = 0x0206;

struct BzImage {
    SetupHeader header;           // as found in the file
    uint64_t kernel_file_offset;  // (setup_sects + 1) * 512
    uint64_t kernel_size;         // bytes of protected-mode code
};

[[nodiscard]] bool looks_like_bzimage(std::span<const uint8_t> file);

// Validates boot_flag, "HdrS", protocol >= 2.06, XLF_KERNEL_64, LOADED_HIGH
// and the setup/kernel split against the file size.
[[nodiscard]] Result<BzImage> parse_bzimage(std::span<const uint8_t> file);

}  // namespace pv::vmm::boot
