#include "imgfmt/partition/partition_table.hpp"

#include <cstring>

namespace pv::img {

namespace {

// Little-endian loads that return 0 when the field lies outside `bytes`.
uint64_t load_le(std::string_view bytes, size_t offset, size_t width) {
    if (offset > bytes.size() || width > bytes.size() - offset)
        return 0;
    uint64_t value = 0;
    for (size_t i = 0; i < width; ++i)
        value |= uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
    return value;
}

bool has_bytes(std::string_view bytes, size_t offset, std::string_view expected) {
    return offset <= bytes.size() && expected.size() <= bytes.size() - offset &&
           bytes.substr(offset, expected.size()) == expected;
}

void add_if_valid(std::vector<Partition>& out, uint32_t number, uint64_t first_sector,
                  uint64_t sectors, uint32_t sector_size, uint64_t disk_size) {
    if (first_sector == 0 || sectors == 0)
        return;
    // Overflow-checked byte range (Firecracker-style checked arithmetic).
    if (first_sector > disk_size / sector_size || sectors > disk_size / sector_size)
        return;
    const uint64_t offset = first_sector * sector_size;
    const uint64_t size = sectors * sector_size;
    if (offset > disk_size || size > disk_size - offset)
        return;
    out.push_back({number, offset, size});
}

// GPT header at LBA 1 (UEFI 2.10 section 5.3.2), entries at the LBA it names.
std::vector<Partition> parse_gpt(std::string_view head, uint32_t sector_size, uint64_t disk_size) {
    std::vector<Partition> out;
    const size_t header = sector_size;
    if (!has_bytes(head, header, "EFI PART"))
        return out;
    const uint64_t entries_lba = load_le(head, header + 72, 8);
    const uint64_t entry_count = load_le(head, header + 80, 4);
    const uint64_t entry_size = load_le(head, header + 84, 4);
    if (entry_size < 128 || entry_size > 4096 || entry_count > 1024 ||
        entries_lba > head.size() / sector_size)
        return out;
    const uint64_t table = entries_lba * sector_size;
    for (uint64_t i = 0; i < entry_count; ++i) {
        const uint64_t entry = table + i * entry_size;
        if (entry + entry_size > head.size())
            break;
        // An all-zero type GUID marks an unused entry.
        const bool unused = load_le(head, entry, 8) == 0 && load_le(head, entry + 8, 8) == 0;
        if (unused)
            continue;
        const uint64_t first = load_le(head, entry + 32, 8);
        const uint64_t last = load_le(head, entry + 40, 8);
        if (last < first)
            continue;
        add_if_valid(out, static_cast<uint32_t>(i + 1), first, last - first + 1, sector_size,
                     disk_size);
    }
    return out;
}

}  // namespace

std::vector<Partition> parse_partition_table(std::string_view head, uint32_t sector_size,
                                             uint64_t disk_size) {
    std::vector<Partition> out;
    if (sector_size < 512 || sector_size > 65536 || (sector_size & (sector_size - 1)) != 0)
        return out;
    if (head.size() < 512 || static_cast<unsigned char>(head[510]) != 0x55 ||
        static_cast<unsigned char>(head[511]) != 0xAA)
        return out;
    constexpr size_t kEntries = 446;
    for (uint32_t i = 0; i < 4; ++i) {
        if (static_cast<unsigned char>(head[kEntries + i * 16 + 4]) == 0xEE)
            return parse_gpt(head, sector_size, disk_size);
    }
    for (uint32_t i = 0; i < 4; ++i) {
        const size_t entry = kEntries + i * 16;
        const auto type = static_cast<unsigned char>(head[entry + 4]);
        // Empty and extended-container entries hold no filesystem themselves.
        if (type == 0x00 || type == 0x05 || type == 0x0f || type == 0x85)
            continue;
        add_if_valid(out, i + 1, load_le(head, entry + 8, 4), load_le(head, entry + 12, 4),
                     sector_size, disk_size);
    }
    return out;
}

std::string detect_filesystem(std::string_view head) {
    // ext2/3/4: s_magic 0xEF53 at byte 56 of the superblock at 1024.
    if (load_le(head, 1024 + 56, 2) == 0xEF53)
        return "ext4";
    if (has_bytes(head, 0, "XFSB"))
        return "xfs";
    // btrfs: magic at byte 64 of the superblock at 64 KiB.
    if (has_bytes(head, 65536 + 64, "_BHRfS_M"))
        return "btrfs";
    return "";
}

}  // namespace pv::img
