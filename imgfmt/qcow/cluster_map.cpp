#include "imgfmt/qcow/cluster_map.hpp"

#include <endian.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "imgfmt/qcow/qcow_header.hpp"
#include "imgfmt/qcow2/header.hpp"

namespace pv::img::qcow {

namespace {

// qcow2 spec, "Cluster mapping": bits 9-55 of L1 and L2 entries hold the
// offset, bit 62 of an L2 entry marks a compressed cluster and bit 0 (version
// 3) reads as zeroes. QEMU's block/qcow.c: bit 63 of a version 1 L2 entry
// marks a compressed cluster, the other bits are the offset.
constexpr uint64_t kQcow2OffsetMask = 0x00fffffffffffe00ull;
constexpr uint64_t kQcow2Compressed = 1ull << 62;
constexpr uint64_t kQcow2ZeroFlag = 1ull;
constexpr uint64_t kQcowCompressed = 1ull << 63;
// The same bound QEMU puts on the qcow2 L1 table (QCOW_MAX_L1_SIZE).
constexpr uint64_t kMaxL1Bytes = 32ull << 20;

Result<std::vector<uint64_t>> read_table(int fd, uint64_t offset, uint64_t entries,
                                         const std::string& what) {
    std::vector<uint64_t> table(entries);
    PV_TRY(pread_all(fd, table.data(), entries * sizeof(uint64_t), offset, what));
    for (uint64_t& entry : table)
        entry = be64toh(entry);
    return table;
}

}  // namespace

Result<ClusterMap> ClusterMap::open(const std::string& path, Format format) {
    ClusterMap map;
    map.m_path = path;
    map.m_format = format;
    map.m_fd = PV_TRY(Fd::open(path, O_RDONLY));
    struct stat st {};
    if (::fstat(map.m_fd.get(), &st) != 0)
        return fail(errno_error("stat " + path));
    map.m_file_size = static_cast<uint64_t>(st.st_size);
    uint64_t l1_offset = 0;
    uint64_t l1_size = 0;
    if (format == Format::Qcow) {
        const Header header = PV_TRY(read_header(map.m_fd.get(), path));
        map.m_version = kVersion;
        map.m_cluster_bits = header.cluster_bits;
        map.m_l2_bits = header.l2_bits;
        map.m_virtual_size = header.size;
        l1_offset = header.l1_table_offset;
        l1_size = header.l1_size;
    } else {
        const qcow2::Header header = PV_TRY(qcow2::read_header(map.m_fd.get(), path));
        map.m_version = header.version;
        map.m_cluster_bits = header.cluster_bits;
        map.m_l2_bits = header.cluster_bits - 3;
        map.m_virtual_size = header.size;
        l1_offset = header.l1_table_offset;
        l1_size = header.l1_size;
    }
    // Both header readers checked that the L1 table lies inside the file.
    if (l1_size * sizeof(uint64_t) > kMaxL1Bytes)
        return fail(make_error(
            path, "L1 table of " + std::to_string(l1_size) + " entries is absurdly large"));
    map.m_l1 = PV_TRY(read_table(map.m_fd.get(), l1_offset, l1_size, "read L1 table of " + path));
    return map;
}

Result<void> ClusterMap::load_l2(uint64_t l2_offset) {
    const uint64_t entries = uint64_t{1} << m_l2_bits;
    const uint64_t bytes = entries * sizeof(uint64_t);
    if (l2_offset > m_file_size || bytes > m_file_size - l2_offset)
        return fail(make_error(m_path, "L2 table at offset " + std::to_string(l2_offset) +
                                           " lies past the end of the file"));
    m_l2 = PV_TRY(read_table(m_fd.get(), l2_offset, entries, "read L2 table of " + m_path));
    m_l2_offset = l2_offset;
    return {};
}

Result<Cluster> ClusterMap::decode_compressed(uint64_t entry) const {
    // qcow2 spec "Compressed Clusters Descriptor": the host offset is in
    // bits 0..x-1 (x = 62 - (cluster_bits - 8)), the number of 512-byte
    // sectors after the one holding the offset in bits x..61; the data ends
    // with its last sector. QEMU's block/qcow.c keeps a version 1 offset in
    // bits 0..62-cluster_bits and the size in bytes in the bits above it.
    Cluster cluster{ClusterState::Compressed, 0, 0};
    if (m_format == Format::Qcow) {
        const uint32_t bits = 63 - m_cluster_bits;
        cluster.host_offset = entry & ((uint64_t{1} << bits) - 1);
        cluster.compressed_size = (entry >> bits) & (cluster_size() - 1);
    } else {
        const uint32_t bits = 62 - (m_cluster_bits - 8);
        cluster.host_offset = entry & ((uint64_t{1} << bits) - 1);
        const uint64_t sectors =
            ((entry >> bits) & ((uint64_t{1} << (m_cluster_bits - 8)) - 1)) + 1;
        cluster.compressed_size = sectors * 512 - (cluster.host_offset & 511);
    }
    const std::string where = "compressed cluster at offset " + std::to_string(cluster.host_offset);
    if (cluster.compressed_size == 0)
        return fail(make_error(m_path, where + " has no data"));
    if (cluster.host_offset >= m_file_size)
        return fail(make_error(m_path, where + " lies past the end of the file"));
    return cluster;
}

Result<Cluster> ClusterMap::decode(uint64_t entry) const {
    const bool compressed =
        (entry & (m_format == Format::Qcow ? kQcowCompressed : kQcow2Compressed)) != 0;
    if (compressed)
        return decode_compressed(entry);
    if (m_format == Format::Qcow2 && m_version >= 3 && (entry & kQcow2ZeroFlag) != 0)
        return Cluster{ClusterState::Zero, 0, 0};
    const uint64_t host = m_format == Format::Qcow ? entry : entry & kQcow2OffsetMask;
    if (host == 0)
        return Cluster{ClusterState::Unallocated, 0, 0};
    // QEMU refuses data clusters that are not cluster-aligned (qcow2) or
    // sector-aligned (version 1) as corruption; so do we, and we never read
    // past the end of the file, where QEMU would have no data either.
    const uint64_t alignment = m_format == Format::Qcow ? 512 : cluster_size();
    const std::string where = "data cluster at offset " + std::to_string(host);
    if (host % alignment != 0)
        return fail(make_error(m_path, where + " is not aligned"));
    if (host > m_file_size || cluster_size() > m_file_size - host)
        return fail(make_error(m_path, where + " lies past the end of the file"));
    return Cluster{ClusterState::Data, host, 0};
}

Result<Cluster> ClusterMap::lookup(uint64_t offset) {
    const uint64_t cluster = offset >> m_cluster_bits;
    const uint64_t l1_index = cluster >> m_l2_bits;
    // Past the L1 table nothing is allocated (QEMU reads it the same way).
    if (l1_index >= m_l1.size())
        return Cluster{ClusterState::Unallocated, 0, 0};
    const uint64_t l2_offset =
        m_format == Format::Qcow ? m_l1[l1_index] : m_l1[l1_index] & kQcow2OffsetMask;
    if (l2_offset == 0)
        return Cluster{ClusterState::Unallocated, 0, 0};
    if (m_l2.empty() || l2_offset != m_l2_offset)
        PV_TRY(load_l2(l2_offset));
    return decode(m_l2[cluster & ((uint64_t{1} << m_l2_bits) - 1)]);
}

}  // namespace pv::img::qcow
