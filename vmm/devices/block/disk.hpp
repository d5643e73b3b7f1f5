#pragma once

// The disk behind patchvisor-vmm's virtio-blk: the image file locked
// (imgfmt/lock.hpp, so a second writer, another VM or qemu-io is refused)
// and opened through imgfmt with its backing chain, or a device the
// embedder opened itself.

#include <memory>
#include <optional>

#include "common/error.hpp"
#include "imgfmt/block_device.hpp"
#include "imgfmt/lock.hpp"
#include "vmm/vm_config.hpp"

namespace pv::vmm {

struct OpenDisk {
    std::optional<img::ImageLock> lock;  // held while the device lives; none for config.device
    std::unique_ptr<img::BlockDevice> device;
};

// qcow2 files are opened with imgfmt's own qcow2 code (read-write capable),
// following the backing file their header names when config.backing allows
// it; anything else goes through open_image, which refuses backing files.
// The format is config.format, or the file's magic. With config.device set,
// that device is served as it is.
[[nodiscard]] Result<OpenDisk> open_disk(const DiskConfig& config);

}  // namespace pv::vmm
