#include "vmm/boot/elf.hpp"

#include <elf.h>
#include <fmt/format.h>

#include <cstring>

namespace pv::vmm::boot {

namespace {

Error elf_error(std::string detail) {
    return make_error("parse ELF kernel", std::move(detail));
}

Result<Elf64_Ehdr> read_header(std::span<const uint8_t> file) {
    if (file.size() < sizeof(Elf64_Ehdr))
        return fail(elf_error("file shorter than an ELF header"));
    Elf64_Ehdr header;
    std::memcpy(&header, file.data(), sizeof(header));
    if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_ident[EI_DATA] != ELFDATA2LSB)
        return fail(elf_error("not a little-endian ELF64 file"));
    if (header.e_machine != EM_X86_64 || header.e_type != ET_EXEC)
        return fail(elf_error("not an x86_64 executable"));
    if (header.e_phentsize != sizeof(Elf64_Phdr) || header.e_phnum == 0)
        return fail(elf_error("bad program header size or count"));
    uint64_t table_end = 0;
    if (__builtin_add_overflow(header.e_phoff, uint64_t{header.e_phnum} * sizeof(Elf64_Phdr),
                               &table_end) ||
        table_end > file.size())
        return fail(elf_error("program headers beyond the end of the file"));
    return header;
}

Result<ElfSegment> check_segment(const Elf64_Phdr& program, size_t file_size,
                                 uint64_t minimum_address) {
    uint64_t file_end = 0;
    uint64_t memory_end = 0;
    if (__builtin_add_overflow(program.p_offset, program.p_filesz, &file_end) ||
        file_end > file_size)
        return fail(elf_error(
            fmt::format("segment at offset {:#x} beyond the end of the file", program.p_offset)));
    if (program.p_filesz > program.p_memsz)
        return fail(elf_error("segment file size larger than memory size"));
    if (__builtin_add_overflow(program.p_paddr, program.p_memsz, &memory_end) ||
        program.p_paddr < minimum_address)
        return fail(
            elf_error(fmt::format("segment at {:#x} outside the kernel area", program.p_paddr)));
    return ElfSegment{program.p_offset, program.p_filesz, program.p_memsz, program.p_paddr};
}

}  // namespace

bool is_elf(std::span<const uint8_t> file) {
    return file.size() >= SELFMAG && std::memcmp(file.data(), ELFMAG, SELFMAG) == 0;
}

Result<ElfImage> parse_elf(std::span<const uint8_t> file, uint64_t minimum_address) {
    if (!is_elf(file))
        return fail(elf_error("no ELF magic"));
    Elf64_Ehdr header = PV_TRY(read_header(file));
    ElfImage image{header.e_entry, {}, UINT64_MAX, 0};
    bool entry_inside = false;
    for (uint16_t index = 0; index < header.e_phnum; ++index) {
        Elf64_Phdr program;
        std::memcpy(&program, file.data() + header.e_phoff + index * sizeof(Elf64_Phdr),
                    sizeof(program));
        if (program.p_type != PT_LOAD || program.p_memsz == 0)
            continue;
        ElfSegment segment = PV_TRY(check_segment(program, file.size(), minimum_address));
        image.lowest_address = std::min(image.lowest_address, segment.guest_address);
        image.highest_address =
            std::max(image.highest_address, segment.guest_address + segment.memory_size);
        entry_inside |= header.e_entry >= segment.guest_address &&
                        header.e_entry - segment.guest_address < segment.memory_size;
        image.segments.push_back(segment);
    }
    if (image.segments.empty())
        return fail(elf_error("no loadable segment"));
    if (!entry_inside)
        return fail(elf_error(fmt::format("entry {:#x} outside every segment", header.e_entry)));
    return image;
}

Result<void> load_elf(const GuestMemory& memory, std::span<const uint8_t> file,
                      const ElfImage& image) {
    for (const auto& segment : image.segments) {
        auto target = PV_TRY(memory.slice(segment.guest_address, segment.memory_size));
        std::memcpy(target.data(), file.data() + segment.file_offset, segment.file_size);
        std::memset(target.data() + segment.file_size, 0, segment.memory_size - segment.file_size);
    }
    return {};
}

}  // namespace pv::vmm::boot
