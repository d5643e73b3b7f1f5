#pragma once

// qcow (version 1) and qcow2 (versions 2 and 3, compressed clusters
// included) images read through libqcow (libyal). The only place that talks
// to libqcow (STYLE.md habit 5): its handles are owned here and its errors
// become pv::Error values that carry libqcow's message and the image path.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "imgfmt/block_device.hpp"

namespace pv::img {

class QcowImage final : public BlockDevice {
  public:
    // Opens CHAIN[0] read-only, with CHAIN[1] as its backing file, CHAIN[2]
    // as CHAIN[1]'s and so on. Every layer must be a qcow or qcow2 file
    // whose header the caller has already validated (inspect_image) and
    // found unencrypted. A layer whose header names a backing file but has
    // no successor in CHAIN reads its unallocated clusters as zeroes.
    [[nodiscard]] static Result<std::unique_ptr<QcowImage>> open(
        const std::vector<std::string>& chain);

    ~QcowImage() override;

    [[nodiscard]] uint64_t size() const override { return m_size; }
    [[nodiscard]] const std::string& name() const override { return m_path; }
    [[nodiscard]] bool read_only() const override { return true; }
    [[nodiscard]] Result<void> read_at(std::span<std::byte> buffer, uint64_t offset) override;
    [[nodiscard]] Result<void> write_at(std::span<const std::byte> buffer,
                                        uint64_t offset) override;
    [[nodiscard]] Result<void> flush() override;
    [[nodiscard]] Result<void> write_zeroes(uint64_t offset, uint64_t length) override;
    [[nodiscard]] Result<void> discard(uint64_t offset, uint64_t length) override;

    class Handle;  // one libqcow_file_t, defined in qcow_image.cpp

  private:
    QcowImage(std::vector<std::unique_ptr<Handle>> handles, std::string path, uint64_t size);

    // Top image first; each handle's parent is the next one.
    std::vector<std::unique_ptr<Handle>> m_handles;
    std::string m_path;
    uint64_t m_size;
    // libqcow handles keep a current offset and caches: not thread-safe.
    std::mutex m_mutex;
};

}  // namespace pv::img
