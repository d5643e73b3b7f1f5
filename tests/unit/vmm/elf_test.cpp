#include "vmm/boot/elf.hpp"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>

#include "test_files.hpp"

namespace pv::vmm::boot {
namespace {

constexpr uint64_t kMinimum = 0x100000;

// A minimal valid x86_64 executable: one PT_LOAD of 16 file bytes and 64
// memory bytes at 1 MiB, entry at its start. Tests break one thing each.
struct SyntheticElf {
    Elf64_Ehdr header{};
    Elf64_Phdr program{};
    uint8_t payload[16];

    SyntheticElf() {
        std::memcpy(header.e_ident, ELFMAG, SELFMAG);
        header.e_ident[EI_CLASS] = ELFCLASS64;
        header.e_ident[EI_DATA] = ELFDATA2LSB;
        header.e_type = ET_EXEC;
        header.e_machine = EM_X86_64;
        header.e_entry = 0x100000;
        header.e_phoff = sizeof(Elf64_Ehdr);
        header.e_phentsize = sizeof(Elf64_Phdr);
        header.e_phnum = 1;
        program.p_type = PT_LOAD;
        program.p_offset = offsetof(SyntheticElf, payload);
        program.p_paddr = 0x100000;
        program.p_filesz = sizeof(payload);
        program.p_memsz = 64;
        std::memset(payload, 0xaa, sizeof(payload));
    }
    std::span<const uint8_t> bytes() const {
        return {reinterpret_cast<const uint8_t*>(this), sizeof(*this)};
    }
};

TEST(Elf, SyntheticImageParsesAndLoadsWithZeroedBss) {
    SyntheticElf elf;
    auto image = parse_elf(elf.bytes(), kMinimum);
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->entry, 0x100000u);
    EXPECT_EQ(image->highest_address, 0x100040u);
    auto memory = GuestMemory::create({{0, 0x200000}});
    ASSERT_TRUE(memory);
    ASSERT_TRUE(memory->fill(0x100000, 64, 0x55));
    ASSERT_TRUE(load_elf(*memory, elf.bytes(), *image));
    EXPECT_EQ(*memory->read<uint8_t>(0x10000f), 0xaa);
    EXPECT_EQ(*memory->read<uint8_t>(0x100010), 0) << "bss must be zeroed";
    EXPECT_EQ(*memory->read<uint8_t>(0x10003f), 0);
}

TEST(Elf, HostileHeadersGiveCleanErrors) {
    auto expect_error = [](SyntheticElf elf, const char* why) {
        EXPECT_FALSE(parse_elf(elf.bytes(), kMinimum)) << why;
    };
    SyntheticElf elf;
    elf.header.e_ident[EI_CLASS] = ELFCLASS32;
    expect_error(elf, "32-bit class");
    elf = {};
    elf.header.e_machine = EM_386;
    expect_error(elf, "wrong machine");
    elf = {};
    elf.header.e_phoff = UINT64_MAX - 8;
    expect_error(elf, "program header offset overflows");
    elf = {};
    elf.header.e_phnum = 1000;
    expect_error(elf, "program headers beyond file");
    elf = {};
    elf.header.e_phentsize = 8;
    expect_error(elf, "wrong phentsize");
    elf = {};
    elf.program.p_offset = 1 << 20;
    expect_error(elf, "segment beyond file");
    elf = {};
    elf.program.p_filesz = 100;
    expect_error(elf, "filesz > memsz and beyond file");
    elf = {};
    elf.program.p_memsz = 8;
    expect_error(elf, "filesz > memsz");
    elf = {};
    elf.program.p_paddr = 0x7000;
    elf.header.e_entry = 0x7000;
    expect_error(elf, "would overwrite the zero page");
    elf = {};
    elf.program.p_paddr = UINT64_MAX - 16;
    elf.header.e_entry = UINT64_MAX - 16;
    expect_error(elf, "paddr + memsz overflows");
    elf = {};
    elf.header.e_entry = 0x200000;
    expect_error(elf, "entry outside segments");
    elf = {};
    elf.program.p_type = PT_NOTE;
    expect_error(elf, "no PT_LOAD");
}

TEST(Elf, TruncatedFilesGiveCleanErrors) {
    SyntheticElf elf;
    auto bytes = elf.bytes();
    for (size_t length :
         {size_t{0}, size_t{3}, sizeof(Elf64_Ehdr) - 1, sizeof(Elf64_Ehdr) + 10, bytes.size() - 1})
        EXPECT_FALSE(parse_elf(bytes.first(length), kMinimum)) << length;
}

TEST(Elf, SegmentOutsideGuestMemoryFailsToLoad) {
    SyntheticElf elf;
    elf.program.p_paddr = 0x1ffff0;
    elf.header.e_entry = 0x1ffff0;
    auto image = parse_elf(elf.bytes(), kMinimum);
    ASSERT_TRUE(image);
    auto memory = GuestMemory::create({{0, 0x200000}});
    ASSERT_TRUE(memory);
    EXPECT_FALSE(load_elf(*memory, elf.bytes(), *image));
}

TEST(Elf, TheTestGuestIsA64BitImageAt1MiB) {
    auto file = test::read_whole_file(test::testguest_path());
    ASSERT_FALSE(file.empty()) << "build the testguest target: " << test::testguest_path();
    auto image = parse_elf(file, kMinimum);
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->entry, 0x100000u);
    EXPECT_EQ(image->lowest_address, 0x100000u);
    // Its buffers for the virtio modes live in .bss; all of it must fit in
    // the smallest microVM (32 MiB, --mem-mib's lower bound).
    EXPECT_LT(image->highest_address, 32u << 20);
}

}  // namespace
}  // namespace pv::vmm::boot
