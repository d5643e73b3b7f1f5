#include "vmm/boot/x86_tables.hpp"

#include <gtest/gtest.h>

#include "vmm/boot/layout.hpp"

namespace pv::vmm::boot {
namespace {

TEST(Gdt, EntriesAreTheFlatDescriptorsOfTheBootProtocol) {
    auto gdt = boot_gdt();
    EXPECT_EQ(gdt[0], 0u);
    EXPECT_EQ(gdt[2], 0x00af9b000000ffffull);  // __BOOT_CS: 64-bit code
    EXPECT_EQ(gdt[3], 0x00cf93000000ffffull);  // __BOOT_DS: read/write data
    EXPECT_EQ(gdt[4], 0x008f8b000000ffffull);  // busy TSS
    EXPECT_EQ(gdt_entry(0x4092, 0x12345678, 0xabcde), 0x124a92345678bcdeull);
}

TEST(Gdt, SegmentsDecodeFromTheDescriptors) {
    auto gdt = boot_gdt();
    kvm_segment code = segment_from_gdt(gdt[2], kBootCodeSelector);
    EXPECT_EQ(code.selector, 0x10);
    EXPECT_EQ(code.base, 0u);
    EXPECT_EQ(code.limit, 0xffffffffu);
    EXPECT_EQ(code.l, 1);
    EXPECT_EQ(code.db, 0);
    EXPECT_EQ(code.type, 0xb);
    EXPECT_EQ(code.present, 1);
    EXPECT_EQ(code.s, 1);
    kvm_segment data = segment_from_gdt(gdt[3], kBootDataSelector);
    EXPECT_EQ(data.db, 1);
    EXPECT_EQ(data.l, 0);
    EXPECT_EQ(data.type, 0x3);
    kvm_segment absent = segment_from_gdt(0, 0);
    EXPECT_EQ(absent.unusable, 1);
}

TEST(Gdt, WrittenWhereSregsPointAndSregsEnterLongMode) {
    auto memory = GuestMemory::create({{0, 0x100000}});
    ASSERT_TRUE(memory);
    ASSERT_TRUE(write_gdt(*memory));
    kvm_sregs sregs{};
    set_long_mode_sregs(sregs);
    EXPECT_EQ(sregs.gdt.base, layout::kGdtAddress);
    EXPECT_EQ(*memory->read<uint64_t>(sregs.gdt.base + kBootCodeSelector), boot_gdt()[2]);
    EXPECT_EQ(sregs.cs.selector, 0x10);
    EXPECT_EQ(sregs.ss.selector, 0x18);
    EXPECT_EQ(sregs.cr0 & 0x80000001u, 0x80000001u) << "PE and PG";
    EXPECT_TRUE(sregs.cr4 & (1 << 5)) << "PAE";
    EXPECT_EQ(sregs.efer & 0x500, 0x500u) << "LME and LMA";
    EXPECT_EQ(sregs.cr3, layout::kPml4Address);
}

TEST(PageTables, IdentityMapTheFirstGiBWith2MiBPages) {
    auto memory = GuestMemory::create({{0, 0x200000}});
    ASSERT_TRUE(memory);
    ASSERT_TRUE(write_identity_page_tables(*memory));
    uint64_t pml4 = *memory->read<uint64_t>(layout::kPml4Address);
    EXPECT_EQ(pml4 & ~0xfffull, layout::kPdptAddress);
    EXPECT_EQ(pml4 & 3, 3u);
    EXPECT_EQ(*memory->read<uint64_t>(layout::kPml4Address + 8), 0u) << "one PML4 slot only";
    uint64_t pdpt = *memory->read<uint64_t>(layout::kPdptAddress);
    EXPECT_EQ(pdpt & ~0xfffull, layout::kPdAddress);
    for (uint64_t index : {0ull, 1ull, 255ull, 511ull}) {
        uint64_t entry = *memory->read<uint64_t>(layout::kPdAddress + index * 8);
        EXPECT_EQ(entry & ~0xfffull, index << 21) << index;
        EXPECT_EQ(entry & 0x83, 0x83u) << "present, writable, 2 MiB page";
    }
}

}  // namespace
}  // namespace pv::vmm::boot
