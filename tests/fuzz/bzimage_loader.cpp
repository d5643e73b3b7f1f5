// Fuzz target: the bzImage loader (vmm/boot/bzimage.cpp and the bzImage
// path of kernel_loader.cpp) on hostile setup headers, per the Linux x86
// boot protocol (boot.rst). parse_bzimage must keep the protected-mode
// kernel inside the file; load_kernel must keep the kernel's footprint,
// the initrd and the command line inside guest RAM and the header's
// limits. Input layout: see boot_input.hpp.

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/boot_input.hpp"
#include "vmm/boot/bzimage.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using pv::fuzz::require;
    const pv::fuzz::BootCase boot = pv::fuzz::split_boot_input(data, size);
    auto image = pv::vmm::boot::parse_bzimage(boot.kernel);
    if (image) {
        require(image->kernel_file_offset < boot.kernel.size());
        require(image->kernel_size == boot.kernel.size() - image->kernel_file_offset);
        require(uint64_t{image->header.syssize} * 16 <= image->kernel_size);
    }
    const auto loaded = pv::fuzz::load_and_check(boot);
    if (image && loaded) {
        // boot.rst, init_size: the kernel needs that much room from where
        // it runs, which for a non-relocatable kernel is pref_address; all
        // of it must be guest RAM below the end load_kernel reported.
        // Copies, since the header is packed.
        const uint64_t pref_address = image->header.pref_address;
        const uint64_t init_size = image->header.init_size;
        uint64_t run_address = pv::vmm::boot::kBzImageLoadAddress;
        if (!image->header.relocatable_kernel)
            run_address = std::max(run_address, pref_address);
        uint64_t run_end = 0;
        require(!__builtin_add_overflow(run_address, init_size, &run_end));
        require(run_end <= loaded->kernel_end);
    }
    return 0;
}
