#include "vmm/boot/bzimage.hpp"

#include <fmt/format.h>

#include <cstring>

namespace pv::vmm::boot {

namespace {

constexpr size_t kHeaderOffset = 0x1f1;
constexpr size_t kSectorSize = 512;

Error bzimage_error(std::string detail) {
    return make_error("parse bzImage setup header", std::move(detail));
}

}  // namespace

bool looks_like_bzimage(std::span<const uint8_t> file) {
    uint32_t magic = 0;
    if (file.size() < 0x206)
        return false;
    std::memcpy(&magic, file.data() + 0x202, sizeof(magic));
    return magic == kHdrSMagic;
}

Result<BzImage> parse_bzimage(std::span<const uint8_t> file) {
    if (file.size() < kHeaderOffset + sizeof(SetupHeader))
        return fail(
            bzimage_error(fmt::format("file of {} bytes has no setup header", file.size())));
    BzImage image{};
    std::memcpy(&image.header, file.data() + kHeaderOffset, sizeof(SetupHeader));
    const SetupHeader& header = image.header;
    if (header.boot_flag != kBootFlagMagic)
        return fail(bzimage_error("boot_flag is not 0xAA55"));
    if (header.header != kHdrSMagic)
        return fail(bzimage_error("no HdrS magic"));
    if (header.version < kMinimumBootProtocol)
        return fail(bzimage_error(fmt::format("boot protocol {}.{:02} older than 2.06",
                                              header.version >> 8, header.version & 0xff)));
    if (!(header.loadflags & kLoadedHigh))
        return fail(bzimage_error("not a bzImage (LOADED_HIGH clear)"));
    if (!(header.xloadflags & kXlfKernel64))
        return fail(bzimage_error("no 64-bit entry point (XLF_KERNEL_64 clear)"));
    // boot.rst: "If this field is 0, the real value is 4."
    uint64_t setup_sectors = header.setup_sects == 0 ? 4 : header.setup_sects;
    image.kernel_file_offset = (setup_sectors + 1) * kSectorSize;
    if (image.kernel_file_offset >= file.size())
        return fail(bzimage_error("setup sectors extend past the end of the file"));
    image.kernel_size = file.size() - image.kernel_file_offset;
    // syssize counts 16-byte paragraphs of protected-mode code (boot.rst).
    if (uint64_t{header.syssize} * 16 > image.kernel_size)
        return fail(bzimage_error(
            fmt::format("syssize {:#x} paragraphs exceeds the file", uint32_t{header.syssize})));
    if (header.kernel_alignment != 0 && (header.kernel_alignment & (header.kernel_alignment - 1)))
        return fail(bzimage_error("kernel_alignment not a power of two"));
    return image;
}

}  // namespace pv::vmm::boot
