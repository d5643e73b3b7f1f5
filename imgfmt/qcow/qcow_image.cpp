#include "imgfmt/qcow/qcow_image.hpp"

#include <algorithm>
#include <cerrno>

#include "imgfmt/qcow/deflate_check.hpp"

namespace pv::img {

QcowImage::QcowImage(qcow::ClusterMap map, std::unique_ptr<qcow::LibqcowFile> libqcow,
                     std::unique_ptr<BlockDevice> backing, std::string path)
    : m_map(std::move(map)),
      m_libqcow(std::move(libqcow)),
      m_backing(std::move(backing)),
      m_path(std::move(path)),
      m_size(m_map.virtual_size()) {}

QcowImage::~QcowImage() = default;

Result<std::unique_ptr<QcowImage>> QcowImage::open(const std::string& path, Format format,
                                                   std::unique_ptr<BlockDevice> backing) {
    // The map checks every table entry first: libqcow only ever sees an
    // image whose tables passed, and only one that has compressed clusters.
    qcow::ClusterMap map = PV_TRY(qcow::ClusterMap::open(path, format));
    std::unique_ptr<qcow::LibqcowFile> libqcow;
    if (map.has_compressed())
        libqcow = PV_TRY(qcow::LibqcowFile::open(path));
    return std::unique_ptr<QcowImage>(
        new QcowImage(std::move(map), std::move(libqcow), std::move(backing), path));
}

Result<void> QcowImage::read_data(std::span<std::byte> buffer, uint64_t host_offset) {
    // The cluster map checked that every cluster of the run lies inside
    // the file.
    return pread_all(m_map.fd(), buffer.data(), buffer.size(), host_offset, "read " + m_path);
}

Result<void> QcowImage::read_compressed(std::span<std::byte> buffer, const qcow::Cluster& cluster,
                                        uint64_t position) {
    const uint64_t cluster_size = m_map.cluster_size();
    const uint64_t offset_in_cluster = position % cluster_size;
    if (m_inflated.size() != cluster_size || !(m_inflated_from == cluster)) {
        // libqcow inflates the whole cluster (raw deflate, as QEMU writes
        // it); we ask for it by its guest offset, up to the end of the disk,
        // once we know its stream fills the cluster (libqcow would hand
        // back uninitialized heap bytes for a stream that ends early).
        const uint64_t cluster_start = position - offset_in_cluster;
        const std::string what =
            "read " + m_path + " at offset " + std::to_string(cluster.host_offset);
        m_inflated.clear();
        // open() saw this cluster's entry and opened libqcow; never rely on
        // that with a null pointer.
        if (m_libqcow == nullptr)
            return fail(make_error(what, "compressed cluster the table check did not see"));
        PV_TRY(
            qcow::check_fills_cluster(m_map.fd(), m_map.file_size(), cluster, cluster_size, what));
        m_inflated.assign(cluster_size, std::byte{0});
        m_inflated_from = cluster;
        const size_t length = static_cast<size_t>(std::min(cluster_size, m_size - cluster_start));
        auto read = m_libqcow->read_at(std::span(m_inflated).first(length), cluster_start);
        if (!read) {
            m_inflated.clear();
            return fail(std::move(read.error()));
        }
    }
    std::copy_n(m_inflated.begin() + static_cast<std::ptrdiff_t>(offset_in_cluster), buffer.size(),
                buffer.begin());
    return {};
}

Result<void> QcowImage::read_backing(std::span<std::byte> buffer, uint64_t offset) {
    // A backing file shorter than this image reads as zeroes past its end,
    // as in QEMU.
    const uint64_t available =
        m_backing == nullptr || offset >= m_backing->size() ? 0 : m_backing->size() - offset;
    const size_t from_backing = static_cast<size_t>(std::min<uint64_t>(available, buffer.size()));
    if (from_backing > 0)
        PV_TRY(m_backing->read_at(buffer.first(from_backing), offset));
    std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(from_backing), buffer.end(),
              std::byte{0});
    return {};
}

Result<void> QcowImage::read_at(std::span<std::byte> buffer, uint64_t offset) {
    PV_TRY(check_range("read", offset, buffer.size()));
    const std::lock_guard lock(m_mutex);
    const uint64_t cluster_size = m_map.cluster_size();
    size_t done = 0;
    while (done < buffer.size()) {
        const uint64_t position = offset + done;
        const uint64_t in_cluster = position % cluster_size;
        const qcow::Cluster cluster = PV_TRY(m_map.lookup(position));
        // Extend the run over following clusters in the same state (and,
        // for data, stored right after each other), so that the file and
        // the backing device see few, large reads.
        uint64_t run_end = position - in_cluster + cluster_size;
        if (cluster.state != qcow::ClusterState::Compressed) {
            while (run_end < offset + buffer.size()) {
                const qcow::Cluster next = PV_TRY(m_map.lookup(run_end));
                const uint64_t run_length = run_end - (position - in_cluster);
                if (next.state != cluster.state ||
                    (cluster.state == qcow::ClusterState::Data &&
                     next.host_offset != cluster.host_offset + run_length))
                    break;
                run_end += cluster_size;
            }
        }
        const size_t length =
            static_cast<size_t>(std::min<uint64_t>(run_end - position, buffer.size() - done));
        const std::span<std::byte> part = buffer.subspan(done, length);
        switch (cluster.state) {
            case qcow::ClusterState::Data:
                PV_TRY(read_data(part, cluster.host_offset + in_cluster));
                break;
            case qcow::ClusterState::Compressed:
                PV_TRY(read_compressed(part, cluster, position));
                break;
            case qcow::ClusterState::Zero:
                std::fill(part.begin(), part.end(), std::byte{0});
                break;
            case qcow::ClusterState::Unallocated:
                PV_TRY(read_backing(part, position));
                break;
        }
        done += length;
    }
    return {};
}

namespace {

void append_extent(std::vector<Extent>& extents, uint64_t offset, uint64_t length,
                   ExtentKind kind) {
    if (length == 0)
        return;
    if (!extents.empty() && extents.back().kind == kind &&
        extents.back().offset + extents.back().length == offset) {
        extents.back().length += length;
        return;
    }
    extents.push_back(Extent{offset, length, kind});
}

}  // namespace

Result<void> QcowImage::map_backing(std::vector<Extent>& extents, uint64_t offset,
                                    uint64_t length) {
    const uint64_t available =
        m_backing == nullptr || offset >= m_backing->size() ? 0 : m_backing->size() - offset;
    const uint64_t from_backing = std::min(available, length);
    if (from_backing > 0) {
        for (const Extent& extent : PV_TRY(m_backing->map(offset, from_backing)))
            append_extent(extents, extent.offset, extent.length,
                          extent.kind == ExtentKind::Zero ? ExtentKind::Zero : ExtentKind::Data);
    }
    append_extent(extents, offset + from_backing, length - from_backing, ExtentKind::Zero);
    return {};
}

Result<std::vector<Extent>> QcowImage::map(uint64_t offset, uint64_t length) {
    PV_TRY(check_range("map", offset, length));
    const std::lock_guard lock(m_mutex);
    std::vector<Extent> extents;
    const uint64_t cluster_size = m_map.cluster_size();
    const uint64_t end = offset + length;
    for (uint64_t position = offset; position < end;) {
        const uint64_t next = std::min(end, (position / cluster_size + 1) * cluster_size);
        switch (PV_TRY(m_map.lookup(position)).state) {
            case qcow::ClusterState::Data:
            case qcow::ClusterState::Compressed:
                append_extent(extents, position, next - position, ExtentKind::Data);
                break;
            case qcow::ClusterState::Zero:
                append_extent(extents, position, next - position, ExtentKind::Zero);
                break;
            case qcow::ClusterState::Unallocated:
                PV_TRY(map_backing(extents, position, next - position));
                break;
        }
        position = next;
    }
    return extents;
}

Result<void> QcowImage::write_at(std::span<const std::byte>, uint64_t) {
    return fail(Error{"write " + m_path, "qcow images are opened read-only", EROFS});
}

Result<void> QcowImage::flush() {
    return {};
}

Result<void> QcowImage::write_zeroes(uint64_t, uint64_t) {
    return fail(Error{"write zeroes to " + m_path, "qcow images are opened read-only", EROFS});
}

Result<void> QcowImage::discard(uint64_t, uint64_t) {
    return fail(Error{"discard on " + m_path, "qcow images are opened read-only", EROFS});
}

}  // namespace pv::img
