#pragma once

// Finds the guest's root filesystem on a disk the way pv-agent does
// (agent/rootfs.hpp): the whole disk first, then each MBR/GPT partition in
// table order, and the first filesystem holding /etc/os-release or
// /usr/lib/os-release is the root. So the host reads the filesystem the
// agent patched, not another one a guest might put beside it.

#include <memory>

#include "common/error.hpp"
#include "guestfs/filesystem.hpp"
#include "imgfmt/block_device.hpp"

namespace pv::guestfs {

// Only ext2/3/4 can be read on the host: a candidate with an xfs or btrfs
// signature that comes before the root is an error, because the agent
// might have chosen it. DISK must outlive the result; errors name DISK.
[[nodiscard]] Result<std::unique_ptr<GuestFilesystem>> find_root_filesystem(img::BlockDevice& disk);

}  // namespace pv::guestfs
