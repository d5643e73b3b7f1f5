#pragma once

// The disk behind patchvisor-vmm's virtio-blk: the image file locked
// (imgfmt/lock.hpp, so a second writer, another VM or qemu-io is refused)
// and opened through imgfmt with its backing chain.

#include <memory>

#include "common/error.hpp"
#include "imgfmt/block_device.hpp"
#include "imgfmt/lock.hpp"
#include "vmm/vm_config.hpp"

namespace pv::vmm {

struct OpenDisk {
    img::ImageLock lock;  // held while the device lives
    std::unique_ptr<img::BlockDevice> device;
};

// qcow2 files are opened with imgfmt's own qcow2 code (read-write capable),
// following the backing file their header names (the operator chose this
// file, and our overlays name their original by absolute path); anything
// else goes through open_image, which refuses backing files.
[[nodiscard]] Result<OpenDisk> open_disk(const DiskConfig& config);

}  // namespace pv::vmm
