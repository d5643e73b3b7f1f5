#pragma once

// Internal to guestfs/ext: a libext2fs I/O manager (ext2fs/ext2_io.h) that
// reads a byte window of an img::BlockDevice, so that libext2fs sees a
// partition of a raw or qcow2 image (with its backing file) exactly as the
// guest's kernel sees its disk. It only reads: every write is refused.

#include <ext2fs/ext2fs.h>

#include <cstdint>
#include <string>

#include "imgfmt/block_device.hpp"

namespace pv::guestfs::detail {

// What one channel reads. Outlives the filesystem opened over it.
struct DiskWindow {
    uint64_t magic = kMagic;
    img::BlockDevice* disk = nullptr;
    uint64_t offset = 0;  // of the filesystem on the disk, in bytes
    uint64_t length = 0;  // bytes of the disk the filesystem may occupy
    // The block device's own message for the last read that failed (a
    // qcow2 table entry out of range, EIO), which libext2fs's error code
    // cannot carry.
    std::string last_error;

    static constexpr uint64_t kMagic = 0x7076'6578'7477'696eULL;
};

// The manager to pass to ext2fs_open2().
[[nodiscard]] io_manager block_io_manager();

// The "device name" to pass to ext2fs_open2() with block_io_manager(): the
// manager's open() receives only a name, so, as e2fsprogs' own
// unixfd_io_manager does with a descriptor number, the name carries the
// window's address.
[[nodiscard]] std::string channel_name(DiskWindow& window);

}  // namespace pv::guestfs::detail
