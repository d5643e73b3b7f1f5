#include "vmm/devices/block/disk.hpp"

#include "imgfmt/image.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"

namespace pv::vmm {

Result<OpenDisk> open_disk(const DiskConfig& config) {
    // The lock first, so nothing is read from a file another writer holds.
    auto lock = PV_TRY(img::ImageLock::acquire(config.path));
    const auto access =
        config.access == DiskAccess::ReadOnly ? img::Access::ReadOnly : img::Access::ReadWrite;
    const auto format = PV_TRY(img::detect_format(config.path));
    std::unique_ptr<img::BlockDevice> device;
    if (format == img::Format::Qcow2)
        device = PV_TRY(img::Qcow2Image::open(config.path, access, img::Backing::Allow));
    else
        device = PV_TRY(img::open_image(config.path, format, access, img::Backing::Refuse));
    return OpenDisk{std::move(lock), std::move(device)};
}

}  // namespace pv::vmm
