#pragma once

// An embedder's patchvisor::Image as the BlockDevice virtio-blk serves. The
// VMM library reaches the image only through the image library's public
// API, so the two shared libraries share no internal type.

#include <optional>
#include <string>

#include <patchvisor/image.hpp>

#include "imgfmt/block_device.hpp"

namespace pv::api {

class ImageDevice final : public img::BlockDevice {
  public:
    explicit ImageDevice(patchvisor::Image image);

    [[nodiscard]] uint64_t size() const override { return m_size; }
    [[nodiscard]] const std::string& name() const override { return m_name; }
    [[nodiscard]] bool read_only() const override { return m_read_only; }
    [[nodiscard]] Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override;
    [[nodiscard]] Result<void> write_at(std::span<const std::byte> buffer,
                                        uint64_t offset) override;
    [[nodiscard]] Result<void> flush() override;
    [[nodiscard]] Result<void> write_zeroes(uint64_t offset, uint64_t length) override;
    [[nodiscard]] Result<void> discard(uint64_t offset, uint64_t length) override;

    // The image back, for the embedder; the device fails every request
    // afterwards. Only once no thread serves the device any more.
    [[nodiscard]] Result<patchvisor::Image> take();

  private:
    [[nodiscard]] Result<patchvisor::Image*> image(const char* verb);

    std::optional<patchvisor::Image> m_image;
    std::string m_name;
    uint64_t m_size;
    bool m_read_only;
};

}  // namespace pv::api
