#pragma once

// qcow (version 1) and qcow2 (versions 2 and 3, compressed clusters
// included) images, read-only. The only place that talks to libqcow
// (libyal; STYLE.md habit 5): its handle is owned here and its errors become
// pv::Error values carrying libqcow's message and the image path.
//
// libqcow reads the clusters stored in the file; our ClusterMap decides
// which clusters those are, so that zero clusters read as zeroes and
// unallocated clusters come from the backing device, of any format, the
// way QEMU reads them (qcow2 spec, "Cluster mapping").

#include <memory>
#include <mutex>
#include <string>

#include "imgfmt/block_device.hpp"
#include "imgfmt/image.hpp"
#include "imgfmt/qcow/cluster_map.hpp"

namespace pv::img {

class QcowImage final : public BlockDevice {
  public:
    // Opens PATH (FORMAT Qcow or Qcow2) read-only over BACKING (nullptr
    // when the image has none, or its backing file is not to be read:
    // unallocated clusters then read as zeroes). The caller has validated
    // the header (inspect_image) and refused encryption and unsupported
    // features; BACKING has already been opened under the caller's policy.
    [[nodiscard]] static Result<std::unique_ptr<QcowImage>> open(
        const std::string& path, Format format, std::unique_ptr<BlockDevice> backing);

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
    // The whole chain's view of the disk: Data where some layer stores the
    // cluster, Zero for zero clusters and for what no layer holds.
    [[nodiscard]] Result<std::vector<Extent>> map(uint64_t offset, uint64_t length) override;

    [[nodiscard]] BlockDevice* backing() const { return m_backing.get(); }

    class Handle;  // one libqcow_file_t, defined in qcow_image.cpp

  private:
    QcowImage(std::unique_ptr<Handle> parent, std::unique_ptr<Handle> handle, qcow::ClusterMap map,
              std::unique_ptr<BlockDevice> backing, std::string path, uint64_t size);
    [[nodiscard]] Result<void> read_stored(std::span<std::byte> buffer, uint64_t offset);
    [[nodiscard]] Result<void> read_backing(std::span<std::byte> buffer, uint64_t offset);
    [[nodiscard]] Result<void> map_backing(std::vector<Extent>& extents, uint64_t offset,
                                           uint64_t length);

    // Declared before m_handle so that it is closed after it (libqcow's
    // child handle refers to its parent).
    std::unique_ptr<Handle> m_parent;
    std::unique_ptr<Handle> m_handle;
    qcow::ClusterMap m_map;
    std::unique_ptr<BlockDevice> m_backing;
    std::string m_path;
    uint64_t m_size;
    // libqcow handles keep a current offset and caches, and so does the
    // cluster map: one reader at a time.
    std::mutex m_mutex;
};

}  // namespace pv::img
