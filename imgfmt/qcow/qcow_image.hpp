#pragma once

// qcow (version 1) and qcow2 (versions 2 and 3, compressed clusters
// included) images, read-only. Our ClusterMap walks the L1/L2 tables (and
// checks all of them at open); data clusters are read with pread,
// compressed ones through libqcow (LibqcowFile), zero clusters read as
// zeroes and unallocated clusters come from the backing device, of any
// format, the way QEMU reads them (qcow2 spec, "Cluster mapping").
//
// libqcow 20201213 used to read every cluster. It disagrees with QEMU on
// zero clusters and backing chains, and hostile tables made it read past
// its own buffers (tests/fuzz/qcow_image found three such inputs): it now
// inflates compressed clusters only, of images whose every table entry
// ClusterMap has checked against what libqcow assumes, and only clusters
// whose deflate stream check_fills_cluster (deflate_check.hpp) has seen
// fill the whole cluster.

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "imgfmt/block_device.hpp"
#include "imgfmt/image.hpp"
#include "imgfmt/qcow/cluster_map.hpp"
#include "imgfmt/qcow/libqcow_file.hpp"

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

  private:
    QcowImage(qcow::ClusterMap map, std::unique_ptr<qcow::LibqcowFile> libqcow,
              std::unique_ptr<BlockDevice> backing, std::string path);
    [[nodiscard]] Result<void> read_data(std::span<std::byte> buffer, uint64_t host_offset);
    [[nodiscard]] Result<void> read_compressed(std::span<std::byte> buffer,
                                               const qcow::Cluster& cluster, uint64_t position);
    [[nodiscard]] Result<void> read_backing(std::span<std::byte> buffer, uint64_t offset);
    [[nodiscard]] Result<void> map_backing(std::vector<Extent>& extents, uint64_t offset,
                                           uint64_t length);

    qcow::ClusterMap m_map;
    // Open only when the image has compressed clusters.
    std::unique_ptr<qcow::LibqcowFile> m_libqcow;
    std::unique_ptr<BlockDevice> m_backing;
    std::string m_path;
    uint64_t m_size;
    // The last compressed cluster libqcow inflated (where it is stored, and
    // its contents): small sequential reads inside one cluster inflate it
    // once.
    qcow::Cluster m_inflated_from;
    std::vector<std::byte> m_inflated;
    // The cluster map, libqcow's handle and the inflated cluster are
    // caches: one reader at a time.
    std::mutex m_mutex;
};

}  // namespace pv::img
