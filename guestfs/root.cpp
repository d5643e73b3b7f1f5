#include "guestfs/root.hpp"

#include <algorithm>
#include <vector>

#include "guestfs/ext/ext_filesystem.hpp"
#include "imgfmt/partition/partition_table.hpp"

namespace pv::guestfs {

namespace {

// Sector size of the disks patchvisor gives guests (virtio-blk and loop
// devices report 512, as the agent sees them).
constexpr uint32_t kSectorSize = 512;

Result<std::string> read_bytes(img::BlockDevice& disk, uint64_t offset, uint64_t length) {
    std::string bytes(length, '\0');
    PV_TRY(disk.read_at(std::as_writable_bytes(std::span(bytes.data(), bytes.size())), offset));
    return bytes;
}

std::string where(const img::Partition& candidate) {
    return candidate.number == 0 ? std::string("the whole disk")
                                 : "partition " + std::to_string(candidate.number);
}

Result<bool> holds_os_release(GuestFilesystem& filesystem) {
    return PV_TRY(filesystem.exists("/etc/os-release")) ||
           PV_TRY(filesystem.exists("/usr/lib/os-release"));
}

}  // namespace

Result<std::unique_ptr<GuestFilesystem>> find_root_filesystem(img::BlockDevice& disk) {
    const std::string what = "find the guest's root filesystem on " + disk.name();
    const std::string head =
        PV_TRY(read_bytes(disk, 0, std::min<uint64_t>(img::kPartitionTableBytes, disk.size())));
    std::vector<img::Partition> candidates{{0, 0, disk.size()}};
    for (const auto& partition : img::parse_partition_table(head, kSectorSize, disk.size()))
        candidates.push_back(partition);
    std::string tried;
    for (const auto& candidate : candidates) {
        const std::string probe =
            PV_TRY(read_bytes(disk, candidate.offset,
                              std::min<uint64_t>(img::kFilesystemProbeBytes, candidate.size)));
        const std::string type = img::detect_filesystem(probe);
        if (type.empty()) {
            tried += "; " + where(candidate) + ": no ext4/xfs/btrfs signature";
            continue;
        }
        if (type != "ext4")
            return fail(make_error(what, where(candidate) + " holds " + type +
                                             ", which the host cannot read to verify the "
                                             "result (only ext2/3/4)"));
        auto filesystem = PV_TRY(ExtFilesystem::open(disk, candidate.offset, candidate.size,
                                                     where(candidate) + " (ext2/3/4 at byte " +
                                                         std::to_string(candidate.offset) +
                                                         ") of " + disk.name()));
        if (PV_TRY(holds_os_release(*filesystem)))
            return std::unique_ptr<GuestFilesystem>(std::move(filesystem));
        tried += "; " + where(candidate) + " (ext2/3/4): no /etc/os-release";
    }
    return fail(make_error(what, tried.empty() ? "nothing to try" : tried.substr(2)));
}

}  // namespace pv::guestfs
