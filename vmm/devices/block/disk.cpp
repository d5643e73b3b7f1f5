#include "vmm/devices/block/disk.hpp"

#include "imgfmt/image.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"

namespace pv::vmm {

namespace {

// virtio-blk owns its backend; an embedder's device is shared with the
// embedder, who gets it back once the VM has ended.
class SharedDevice final : public img::BlockDevice {
  public:
    explicit SharedDevice(std::shared_ptr<img::BlockDevice> device) : m_device(std::move(device)) {}

    [[nodiscard]] uint64_t size() const override { return m_device->size(); }
    [[nodiscard]] const std::string& name() const override { return m_device->name(); }
    [[nodiscard]] bool read_only() const override { return m_device->read_only(); }
    [[nodiscard]] Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override {
        return m_device->read_at(buffer, offset);
    }
    [[nodiscard]] Result<void> write_at(std::span<const std::byte> buffer,
                                        uint64_t offset) override {
        return m_device->write_at(buffer, offset);
    }
    [[nodiscard]] Result<void> flush() override { return m_device->flush(); }
    [[nodiscard]] Result<void> write_zeroes(uint64_t offset, uint64_t length) override {
        return m_device->write_zeroes(offset, length);
    }
    [[nodiscard]] Result<void> discard(uint64_t offset, uint64_t length) override {
        return m_device->discard(offset, length);
    }
    [[nodiscard]] Result<std::vector<img::Extent>> map(uint64_t offset, uint64_t length) override {
        return m_device->map(offset, length);
    }

  private:
    std::shared_ptr<img::BlockDevice> m_device;
};

}  // namespace

Result<OpenDisk> open_disk(const DiskConfig& config) {
    if (config.device)
        return OpenDisk{std::nullopt, std::make_unique<SharedDevice>(config.device)};
    // The lock first, so nothing is read from a file another writer holds.
    auto lock = PV_TRY(img::ImageLock::acquire(config.path));
    const auto access = config.access;
    const auto format = config.format ? *config.format : PV_TRY(img::detect_format(config.path));
    std::unique_ptr<img::BlockDevice> device;
    if (format == img::Format::Qcow2)
        device = PV_TRY(img::Qcow2Image::open(config.path, access, config.backing));
    else
        device = PV_TRY(img::open_image(config.path, format, access, img::Backing::Refuse));
    return OpenDisk{std::move(lock), std::move(device)};
}

}  // namespace pv::vmm
