// Fuzz target: the bzImage loader (vmm/boot/bzimage.cpp and the bzImage
// path of kernel_loader.cpp) on hostile setup headers, per the Linux x86
// boot protocol (boot.rst). parse_bzimage must keep the protected-mode
// kernel inside the file; load_kernel must keep the kernel's footprint,
// the initrd and the command line inside guest RAM and the header's
// limits. Input layout: see boot_input.hpp.

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
    pv::fuzz::load_and_check(boot);
    return 0;
}
