#pragma once

// Partition tables and filesystem signatures, parsed from raw disk bytes.
// Pure functions over hostile bytes: every offset is bounds-checked, so they
// are unit-tested and fuzzable without a disk.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pv::img {

struct Partition {
    uint32_t number = 0;  // 1-based, as the kernel names vda1, loop0p1.
    uint64_t offset = 0;  // in bytes
    uint64_t size = 0;    // in bytes
};

// How much of the disk's start parse_partition_table() needs: the MBR, the
// GPT header and the usual 128 entries of 128 bytes (UEFI 2.10 section 5.3).
inline constexpr size_t kPartitionTableBytes = 1024 * 1024;

// Partitions of an MBR or GPT disk whose first bytes are `head`. GPT is used
// when the MBR is protective (type 0xEE). Entries that lie beyond
// `disk_size` or outside `head` are dropped; an unpartitioned disk gives an
// empty list. Extended (logical) MBR partitions are not followed.
[[nodiscard]] std::vector<Partition> parse_partition_table(std::string_view head,
                                                           uint32_t sector_size,
                                                           uint64_t disk_size);

// Bytes detect_filesystem() needs from the start of a filesystem (btrfs keeps
// its superblock at 64 KiB).
inline constexpr size_t kFilesystemProbeBytes = 128 * 1024;

// "ext4" (ext2/3/4 all mount with the ext4 driver), "xfs", "btrfs", or ""
// when no supported signature is found.
[[nodiscard]] std::string detect_filesystem(std::string_view head);

}  // namespace pv::img
