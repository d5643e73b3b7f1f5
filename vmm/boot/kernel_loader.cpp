#include "vmm/boot/kernel_loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "vmm/boot/bzimage.hpp"
#include "vmm/boot/elf.hpp"
#include "vmm/boot/layout.hpp"

namespace pv::vmm::boot {

namespace {

constexpr uint64_t kPage = 4096;
// boot.rst: kernels before protocol 2.03 (and ELF images, which carry no
// header) get the historical initrd ceiling.
constexpr uint32_t kDefaultInitrdAddrMax = 0x37ffffff;
// x86 COMMAND_LINE_SIZE, the limit for ELF images whose header we lack.
constexpr uint32_t kDefaultCmdlineSize = 2047;
// heap_end_ptr is relative to the real-mode code start (boot.rst: 0xfe00
// minus the 0x200 of boot sector before setup).
constexpr uint16_t kHeapEnd = 0xfe00 - 0x200;

uint64_t low_ram_end(const GuestMemory& memory) {
    return std::min(memory.total_size(), layout::kMmioGapStart);
}

Result<LoadedKernel> load_elf_kernel(const GuestMemory& memory, std::span<const uint8_t> file,
                                     BootParams& params) {
    ElfImage image = PV_TRY(parse_elf(file, layout::kHighMemoryStart));
    PV_TRY(load_elf(memory, file, image));
    // An ELF kernel brings no setup header; boot.rst's fields that the
    // kernel checks are filled as a boot loader would.
    params.hdr.boot_flag = kBootFlagMagic;
    params.hdr.header = kHdrSMagic;
    params.hdr.kernel_alignment = 0x1000000;
    params.hdr.initrd_addr_max = kDefaultInitrdAddrMax;
    params.hdr.cmdline_size = kDefaultCmdlineSize;
    return LoadedKernel{KernelFormat::Elf, image.entry, image.highest_address, 0, 0};
}

Result<LoadedKernel> load_bzimage_kernel(const GuestMemory& memory, std::span<const uint8_t> file,
                                         BootParams& params) {
    BzImage image = PV_TRY(parse_bzimage(file));
    // The kernel needs init_size bytes from where it runs to decompress
    // (boot.rst, init_size). A relocatable kernel runs where it is loaded; a
    // non-relocatable one moves itself to pref_address (LOAD_PHYSICAL_ADDR).
    uint64_t run_address = kBzImageLoadAddress;
    if (!image.header.relocatable_kernel)
        run_address = std::max(run_address, uint64_t{image.header.pref_address});
    // Both numbers come from the kernel file: the sum must not wrap around
    // (found by tests/fuzz/bzimage_loader).
    uint64_t run_end = 0;
    if (__builtin_add_overflow(run_address, uint64_t{image.header.init_size}, &run_end))
        return fail(make_error("load bzImage", "pref_address + init_size overflows"));
    uint64_t footprint_end = std::max<uint64_t>(kBzImageLoadAddress + image.kernel_size, run_end);
    if (footprint_end > low_ram_end(memory))
        return fail(make_error(
            "load bzImage",
            fmt::format("kernel needs {} MiB, guest RAM too small", footprint_end >> 20)));
    PV_TRY(memory.write_bytes(kBzImageLoadAddress, file.subspan(image.kernel_file_offset)));
    // boot.rst "Loading the rest of the kernel": the header the kernel reads
    // is its own, copied up to the end announced by the jump at 0x200.
    size_t header_end = std::min<size_t>(0x202 + file[0x201], 0x1f1 + sizeof(SetupHeader));
    std::memcpy(&params.hdr, file.data() + 0x1f1, header_end - 0x1f1);
    return LoadedKernel{KernelFormat::BzImage, kBzImageLoadAddress + kBzImage64BitEntryOffset,
                        footprint_end, 0, 0};
}

Result<void> load_initrd(const GuestMemory& memory, std::span<const uint8_t> initrd,
                         LoadedKernel& kernel, BootParams& params) {
    uint64_t maximum =
        params.hdr.initrd_addr_max ? params.hdr.initrd_addr_max : kDefaultInitrdAddrMax;
    uint64_t lowest = (kernel.kernel_end + kPage - 1) & ~(kPage - 1);
    uint64_t address = PV_TRY(place_initrd(initrd.size(), lowest, low_ram_end(memory), maximum));
    PV_TRY(memory.write_bytes(address, initrd));
    kernel.initrd_address = address;
    kernel.initrd_size = initrd.size();
    params.hdr.ramdisk_image = static_cast<uint32_t>(address);
    params.hdr.ramdisk_size = static_cast<uint32_t>(initrd.size());
    params.ext_ramdisk_image = static_cast<uint32_t>(address >> 32);
    params.ext_ramdisk_size = static_cast<uint32_t>(uint64_t{initrd.size()} >> 32);
    return {};
}

}  // namespace

Result<uint64_t> place_initrd(uint64_t size, uint64_t lowest, uint64_t ram_end,
                              uint64_t max_address) {
    uint64_t ceiling = max_address == UINT64_MAX ? ram_end : std::min(ram_end, max_address + 1);
    if (size == 0 || size > ceiling)
        return fail(make_error("place initrd", fmt::format("{} bytes do not fit", size)));
    uint64_t address = (ceiling - size) & ~(kPage - 1);
    if (address < lowest)
        return fail(make_error(
            "place initrd",
            fmt::format("{} bytes do not fit between {:#x} and {:#x}", size, lowest, ceiling)));
    return address;
}

Result<LoadedKernel> load_kernel(const GuestMemory& memory, const BootInputs& inputs) {
    BootParams params{};
    LoadedKernel kernel{};
    if (is_elf(inputs.kernel))
        kernel = PV_TRY(load_elf_kernel(memory, inputs.kernel, params));
    else if (looks_like_bzimage(inputs.kernel))
        kernel = PV_TRY(load_bzimage_kernel(memory, inputs.kernel, params));
    else
        return fail(make_error("load kernel", "neither an ELF file nor a bzImage"));

    params.hdr.type_of_loader = kUndefinedLoader;
    params.hdr.loadflags |= kCanUseHeap;
    params.hdr.heap_end_ptr = kHeapEnd;
    PV_TRY(check_cmdline(inputs.cmdline,
                         params.hdr.cmdline_size ? params.hdr.cmdline_size : kDefaultCmdlineSize));
    PV_TRY(memory.fill(layout::kCmdlineAddress, inputs.cmdline.size() + 1, 0));
    PV_TRY(memory.write_bytes(
        layout::kCmdlineAddress,
        {reinterpret_cast<const uint8_t*>(inputs.cmdline.data()), inputs.cmdline.size()}));
    params.hdr.cmd_line_ptr = static_cast<uint32_t>(layout::kCmdlineAddress);
    params.ext_cmd_line_ptr = 0;
    if (!inputs.initrd.empty())
        PV_TRY(load_initrd(memory, inputs.initrd, kernel, params));
    PV_TRY(fill_e820(params, memory.total_size()));
    PV_TRY(memory.write(layout::kBootParamsAddress, params));
    return kernel;
}

}  // namespace pv::vmm::boot
