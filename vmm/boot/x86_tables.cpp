#include "vmm/boot/x86_tables.hpp"

#include "vmm/boot/layout.hpp"

namespace pv::vmm::boot {

namespace {

constexpr uint64_t kPagePresent = 1 << 0;
constexpr uint64_t kPageWritable = 1 << 1;
constexpr uint64_t kPageSize2MiB = 1 << 7;

constexpr uint64_t kCr0ProtectionEnable = 1 << 0;
constexpr uint64_t kCr0ExtensionType = 1 << 4;
constexpr uint64_t kCr0Paging = 1ull << 31;
constexpr uint64_t kCr4Pae = 1 << 5;
constexpr uint64_t kEferLongModeEnable = 1 << 8;
constexpr uint64_t kEferLongModeActive = 1 << 10;

}  // namespace

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
    return ((uint64_t{base} & 0xff000000) << 32) | ((uint64_t{flags} & 0xf0ff) << 40) |
           ((uint64_t{limit} & 0x000f0000) << 32) | ((uint64_t{base} & 0x00ffffff) << 16) |
           (uint64_t{limit} & 0x0000ffff);
}

std::array<uint64_t, 5> boot_gdt() {
    return {
        0,
        0,
        gdt_entry(0xa09b, 0, 0xfffff),  // 64-bit code, present, DPL 0, 4 GiB
        gdt_entry(0xc093, 0, 0xfffff),  // data, read/write, 4 GiB
        gdt_entry(0x808b, 0, 0xfffff),  // 64-bit busy TSS, needed by VMX entry checks
    };
}

kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector) {
    kvm_segment segment{};
    segment.base = ((entry >> 16) & 0xffffff) | (((entry >> 56) & 0xff) << 24);
    uint32_t limit = static_cast<uint32_t>((entry & 0xffff) | (((entry >> 48) & 0xf) << 16));
    segment.g = (entry >> 55) & 1;
    // With 4 KiB granularity the limit counts pages, the low 12 bits are ones.
    segment.limit = segment.g ? (limit << 12) | 0xfff : limit;
    segment.selector = selector;
    segment.type = (entry >> 40) & 0xf;
    segment.present = (entry >> 47) & 1;
    segment.dpl = (entry >> 45) & 3;
    segment.db = (entry >> 54) & 1;
    segment.s = (entry >> 44) & 1;
    segment.l = (entry >> 53) & 1;
    segment.avl = (entry >> 52) & 1;
    segment.unusable = segment.present ? 0 : 1;
    return segment;
}

Result<void> write_gdt(const GuestMemory& memory) {
    auto gdt = boot_gdt();
    for (size_t index = 0; index < gdt.size(); ++index)
        PV_TRY(memory.write<uint64_t>(layout::kGdtAddress + index * 8, gdt[index]));
    PV_TRY(memory.write<uint64_t>(layout::kIdtAddress, 0));
    return {};
}

Result<void> write_identity_page_tables(const GuestMemory& memory) {
    using namespace layout;
    PV_TRY(memory.fill(kPml4Address, 3 * 4096, 0));
    PV_TRY(memory.write<uint64_t>(kPml4Address, kPdptAddress | kPagePresent | kPageWritable));
    PV_TRY(memory.write<uint64_t>(kPdptAddress, kPdAddress | kPagePresent | kPageWritable));
    for (uint64_t index = 0; index < 512; ++index)
        PV_TRY(memory.write<uint64_t>(
            kPdAddress + index * 8, (index << 21) | kPagePresent | kPageWritable | kPageSize2MiB));
    return {};
}

void set_long_mode_sregs(kvm_sregs& sregs) {
    auto gdt = boot_gdt();
    sregs.gdt.base = layout::kGdtAddress;
    sregs.gdt.limit = static_cast<uint16_t>(gdt.size() * 8 - 1);
    sregs.idt.base = layout::kIdtAddress;
    sregs.idt.limit = 7;
    sregs.cs = segment_from_gdt(gdt[2], kBootCodeSelector);
    kvm_segment data = segment_from_gdt(gdt[3], kBootDataSelector);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.tr = segment_from_gdt(gdt[4], kBootTssSelector);
    sregs.cr3 = layout::kPml4Address;
    sregs.cr4 |= kCr4Pae;
    sregs.cr0 |= kCr0ProtectionEnable | kCr0ExtensionType | kCr0Paging;
    sregs.efer |= kEferLongModeEnable | kEferLongModeActive;
}

}  // namespace pv::vmm::boot
