#include "agent/rootfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/fd.hpp"
#include "imgfmt/partition/partition_table.hpp"

namespace pv::agent {

namespace {

struct DiskInfo {
    Fd fd;
    bool is_block_device = false;
    uint64_t size = 0;
    uint32_t sector_size = 512;
};

Result<DiskInfo> open_disk(const std::string& disk) {
    DiskInfo info;
    info.fd = PV_TRY(Fd::open(disk, O_RDWR));
    struct stat st {};
    if (fstat(info.fd.get(), &st) != 0)
        return fail(errno_error("stat " + disk));
    info.is_block_device = S_ISBLK(st.st_mode);
    if (info.is_block_device) {
        if (ioctl(info.fd.get(), BLKGETSIZE64, &info.size) != 0)
            return fail(errno_error("get size of " + disk));
        int sector = 512;
        if (ioctl(info.fd.get(), BLKSSZGET, &sector) == 0 && sector > 0)
            info.sector_size = static_cast<uint32_t>(sector);
    } else {
        info.size = static_cast<uint64_t>(st.st_size);
    }
    return info;
}

Result<std::string> read_at(const DiskInfo& disk, uint64_t offset, size_t length) {
    if (offset >= disk.size)
        return std::string{};
    length = static_cast<size_t>(std::min<uint64_t>(length, disk.size - offset));
    std::string bytes(length, '\0');
    PV_TRY(pread_all(disk.fd.get(), bytes.data(), length, offset, "read disk"));
    return bytes;
}

// The kernel's own device for the partition starting at `offset` (virtio-blk
// disks in the microVM are scanned by the kernel), or "" when there is none,
// as for loop devices without partition scanning in the jail.
std::string kernel_partition_device(const std::string& disk, uint64_t offset) {
    const std::string name = disk.substr(disk.rfind('/') + 1);
    const std::string sys = "/sys/class/block/" + name;
    DIR* dir = opendir(sys.c_str());
    if (dir == nullptr)
        return "";
    std::string found;
    while (const dirent* entry = readdir(dir)) {
        const std::string child = entry->d_name;
        if (child.rfind(name, 0) != 0)
            continue;
        char buffer[32] = {};
        const int fd = open((sys + "/" + child + "/start").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        const ssize_t got = read(fd, buffer, sizeof buffer - 1);
        close(fd);
        if (got > 0 && std::strtoull(buffer, nullptr, 10) * 512 == offset &&
            access(("/dev/" + child).c_str(), F_OK) == 0) {
            found = "/dev/" + child;
            break;
        }
    }
    closedir(dir);
    return found;
}

// A loop device over [offset, offset + size) of the disk, released by the
// kernel when its last user (the mount) goes away.
Result<std::pair<Fd, std::string>> attach_loop(const DiskInfo& disk, uint64_t offset,
                                               uint64_t size) {
    Fd control = PV_TRY(Fd::open("/dev/loop-control", O_RDWR));
    // Other sandboxes may grab the same free device between GET_FREE and
    // CONFIGURE; the kernel then answers EBUSY and we ask again.
    for (int attempt = 0; attempt < 16; ++attempt) {
        const int number = ioctl(control.get(), LOOP_CTL_GET_FREE);
        if (number < 0)
            return fail(errno_error("find a free loop device"));
        const std::string path = "/dev/loop" + std::to_string(number);
        Fd loop = PV_TRY(Fd::open(path, O_RDWR));
        loop_config config{};
        config.fd = static_cast<uint32_t>(disk.fd.get());
        config.info.lo_offset = offset;
        config.info.lo_sizelimit = size;
        config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        if (ioctl(loop.get(), LOOP_CONFIGURE, &config) == 0)
            return std::pair{std::move(loop), path};
        if (errno != EBUSY)
            return fail(errno_error("attach " + path + " at offset " + std::to_string(offset)));
    }
    return fail(make_error("attach a loop device", "every free loop device was taken"));
}

bool has_os_release(const std::string& root) {
    struct stat st {};
    return lstat((root + "/etc/os-release").c_str(), &st) == 0 ||
           lstat((root + "/usr/lib/os-release").c_str(), &st) == 0;
}

// Mounts one candidate; returns the device description, or "" when it is
// not the root (no os-release) and was unmounted again.
Result<std::string> try_candidate(const std::string& disk_path, const DiskInfo& disk,
                                  const img::Partition& part, const std::string& type,
                                  const std::string& mountpoint) {
    std::string device;
    std::string description;
    Fd loop;  // Held until mounted; autoclear then ties it to the mount.
    if (part.offset == 0 && disk.is_block_device) {
        device = description = disk_path;
    } else if (auto kernel = kernel_partition_device(disk_path, part.offset); !kernel.empty()) {
        device = description = kernel;
    } else {
        auto [fd, path] = PV_TRY(attach_loop(disk, part.offset, part.size));
        loop = std::move(fd);
        device = path;
        description = path + " (offset " + std::to_string(part.offset) + " of " + disk_path + ")";
    }
    // XFS refuses a second mount of a filesystem UUID anywhere on the host,
    // which copies of one image patched side by side in jails all share.
    const char* options = type == "xfs" ? "nouuid" : nullptr;
    if (mount(device.c_str(), mountpoint.c_str(), type.c_str(), MS_NOATIME, options) != 0)
        return fail(errno_error("mount " + description + " as " + type));
    if (has_os_release(mountpoint))
        return description;
    umount2(mountpoint.c_str(), 0);
    return std::string{};
}

}  // namespace

Result<MountedRoot> MountedRoot::find_and_mount(const std::string& disk_path,
                                                const std::string& mountpoint) {
    const DiskInfo disk = PV_TRY(open_disk(disk_path));
    std::vector<img::Partition> candidates{{0, 0, disk.size}};
    const std::string head = PV_TRY(read_at(disk, 0, img::kPartitionTableBytes));
    for (const auto& part : img::parse_partition_table(head, disk.sector_size, disk.size))
        candidates.push_back(part);
    std::string tried;
    for (const auto& part : candidates) {
        const std::string probe = PV_TRY(read_at(disk, part.offset, img::kFilesystemProbeBytes));
        const std::string type = img::detect_filesystem(probe);
        const std::string where = part.number == 0 ? std::string("whole disk")
                                                   : "partition " + std::to_string(part.number);
        if (type.empty()) {
            tried += "; " + where + ": no ext4/xfs/btrfs signature";
            continue;
        }
        auto mounted = try_candidate(disk_path, disk, part, type, mountpoint);
        if (!mounted) {
            tried += "; " + where + ": " + mounted.error().message();
            continue;
        }
        if (!mounted->empty())
            return MountedRoot(mountpoint, *mounted, type);
        tried += "; " + where + " (" + type + "): no /etc/os-release";
    }
    return fail(make_error("find the guest root filesystem on " + disk_path,
                           tried.empty() ? "nothing to try" : tried.substr(2)));
}

MountedRoot::MountedRoot(MountedRoot&& other) noexcept
    : m_path(std::move(other.m_path)),
      m_device(std::move(other.m_device)),
      m_filesystem(std::move(other.m_filesystem)),
      m_mounted(std::exchange(other.m_mounted, false)) {}

MountedRoot::~MountedRoot() {
    (void)unmount();
}

Result<void> MountedRoot::unmount() {
    if (!m_mounted)
        return {};
    sync();
    if (umount2(m_path.c_str(), 0) != 0)
        return fail(errno_error("unmount " + m_path));
    m_mounted = false;
    return {};
}

}  // namespace pv::agent
