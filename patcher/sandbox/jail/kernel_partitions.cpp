#include "patcher/sandbox/jail/kernel_partitions.hpp"

#include <linux/blkpg.h>
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "common/fd.hpp"
#include "imgfmt/partition/partition_table.hpp"

namespace pv::sandbox {

namespace {

Result<void> add_partition(int fd, const std::string& name, const img::Partition& partition) {
    blkpg_partition entry{};
    entry.start = static_cast<long long>(partition.offset);
    entry.length = static_cast<long long>(partition.size);
    entry.pno = static_cast<int>(partition.number);
    blkpg_ioctl_arg argument{};
    argument.op = BLKPG_ADD_PARTITION;
    argument.datalen = sizeof(entry);
    argument.data = &entry;
    if (::ioctl(fd, BLKPG, &argument) != 0)
        return fail(
            errno_error("add partition " + std::to_string(partition.number) + " of " + name));
    return {};
}

}  // namespace

Result<size_t> register_partitions(int fd, const std::string& name) {
    uint64_t disk_size = 0;
    int sector_size = 512;
    if (::ioctl(fd, BLKGETSIZE64, &disk_size) != 0 || ::ioctl(fd, BLKSSZGET, &sector_size) != 0)
        return fail(errno_error("size of " + name));
    std::string head(std::min<uint64_t>(img::kPartitionTableBytes, disk_size), '\0');
    PV_TRY(pread_all(fd, head.data(), head.size(), 0, "read partition table of " + name));
    size_t added = 0;
    for (const img::Partition& partition :
         img::parse_partition_table(head, static_cast<uint32_t>(sector_size), disk_size)) {
        auto done = add_partition(fd, name, partition);
        // EBUSY: the kernel already has it (its own scan found it).
        if (!done && done.error().code != EBUSY)
            return fail(done.error());
        added += done ? 1 : 0;
    }
    return added;
}

}  // namespace pv::sandbox
