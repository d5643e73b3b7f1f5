#include "imgfmt/qcow/cluster_map.hpp"

#include <endian.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

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
    PV_TRY(map.validate_tables());
    return map;
}

Result<uint64_t> ClusterMap::l2_offset_of(uint64_t l1_index) const {
    const uint64_t entry = m_l1[l1_index];
    const std::string where = "L1 entry " + std::to_string(l1_index);
    // libqcow takes the L2 offset from bits 0-61 (qcow2) or 0-62 (version 1)
    // of the entry, we (and QEMU) from bits 9-55 or all 64: the entries
    // where the two differ are the ones QEMU calls corrupt (qcow2 spec,
    // "L1 table entry": bits 1-8 and 56-62 are reserved and must be zero).
    const uint64_t reserved =
        m_format == Format::Qcow ? uint64_t{1} << 63 : ~(kQcow2OffsetMask | (uint64_t{1} << 63));
    if ((entry & reserved) != 0)
        return fail(make_error(m_path, where + " has reserved bits set"));
    const uint64_t l2_offset = entry & (m_format == Format::Qcow ? ~uint64_t{0} : kQcow2OffsetMask);
    // libqcow reads L2 tables as a vector of table-sized slots from the
    // start of the file: a table that does not start on a slot would be
    // read from the slot it starts in. QEMU writes them cluster-aligned,
    // and an L2 table is one cluster (qcow2; qcow version 1 as qemu-img
    // makes it).
    const uint64_t table_bytes = (uint64_t{1} << m_l2_bits) * sizeof(uint64_t);
    if (l2_offset % table_bytes != 0)
        return fail(make_error(m_path, where + ": L2 table at offset " + std::to_string(l2_offset) +
                                           " is not aligned to " + std::to_string(table_bytes) +
                                           " bytes"));
    return l2_offset;
}

Result<void> ClusterMap::validate_tables() {
    // Every L2 table once, however many L1 entries name it; errors name the
    // first of those entries.
    std::vector<std::pair<uint64_t, uint64_t>> tables;  // (offset, L1 index)
    for (uint64_t index = 0; index < m_l1.size(); ++index) {
        const uint64_t l2_offset = PV_TRY(l2_offset_of(index));
        if (l2_offset != 0)
            tables.emplace_back(l2_offset, index);
    }
    std::sort(tables.begin(), tables.end());
    tables.erase(std::unique(tables.begin(), tables.end(),
                             [](const auto& a, const auto& b) { return a.first == b.first; }),
                 tables.end());
    for (const auto& [l2_offset, l1_index] : tables) {
        const std::string table = "L2 table of L1 entry " + std::to_string(l1_index);
        if (auto loaded = load_l2(l2_offset); !loaded) {
            Error error = std::move(loaded.error());
            error.detail = table + ": " + error.detail;
            return fail(std::move(error));
        }
        for (size_t index = 0; index < m_l2.size(); ++index) {
            auto cluster = decode(m_l2[index]);
            if (!cluster) {
                Error error = std::move(cluster.error());
                error.detail = "entry " + std::to_string(index) + " of the " + table +
                               " (at offset " + std::to_string(l2_offset) + "): " + error.detail;
                return fail(std::move(error));
            }
            if (cluster->state == ClusterState::Compressed)
                m_has_compressed = true;
        }
    }
    return {};
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
    // libqcow reads a compressed cluster of no bytes through a null
    // pointer, and takes an entry whose offset and size bits are all zero
    // for an unallocated cluster.
    if (cluster.compressed_size == 0)
        return fail(make_error(m_path, where + " has no data"));
    if (cluster.host_offset == 0)
        return fail(make_error(m_path, where + " overlaps the header"));
    if (cluster.host_offset >= m_file_size)
        return fail(make_error(m_path, where + " lies past the end of the file"));
    // QEMU's block/qcow.c writes exactly the deflated bytes, at the end of
    // the file, and libqcow reads exactly compressed_size bytes: all of them
    // must be inside the file. (qcow2 is the other way round: QEMU counts
    // whole sectors, the last one may be cut by the end of the file, and
    // libqcow stops its read at the end of the file.)
    if (m_format == Format::Qcow && cluster.compressed_size > m_file_size - cluster.host_offset)
        return fail(make_error(m_path, where + " runs past the end of the file"));
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
    const uint64_t l2_offset = PV_TRY(l2_offset_of(l1_index));
    if (l2_offset == 0)
        return Cluster{ClusterState::Unallocated, 0, 0};
    if (m_l2.empty() || l2_offset != m_l2_offset)
        PV_TRY(load_l2(l2_offset));
    return decode(m_l2[cluster & ((uint64_t{1} << m_l2_bits) - 1)]);
}

}  // namespace pv::img::qcow
