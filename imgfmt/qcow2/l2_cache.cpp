// The L1 table and the bounded L2 table cache of Metadata (qcow2 spec,
// "Cluster mapping": guest offset -> L1 index -> L2 table -> host cluster).

#include <algorithm>

#include "common/fd.hpp"
#include "imgfmt/qcow2/endian.hpp"
#include "imgfmt/qcow2/limits.hpp"
#include "imgfmt/qcow2/metadata.hpp"

namespace pv::img::qcow2 {
namespace {

// Enough L2 tables to map 64 GiB with 64 KiB clusters, in 8 MiB of memory.
constexpr uint64_t kL2CacheBytes = 8ull << 20;
constexpr size_t kMinL2Tables = 16;

// L1 entries (qcow2 spec, "Cluster mapping"): bits 9-55 are the offset of
// the L2 table, bit 63 the "copied" flag; every other bit is reserved.
constexpr uint64_t kL1ReservedBits = ~(kOffsetMask | kEntryCopied);

std::vector<uint64_t> read_be64_array(const std::vector<uint8_t>& bytes) {
    std::vector<uint64_t> values(bytes.size() / 8);
    for (size_t i = 0; i < values.size(); ++i)
        values[i] = load_be64(&bytes[i * 8]);
    return values;
}

}  // namespace

Geometry Geometry::for_bits(uint32_t cluster_bits) {
    Geometry g;
    g.cluster_bits = cluster_bits;
    g.cluster_size = uint64_t{1} << cluster_bits;
    g.l2_bits = cluster_bits - 3;
    g.refcounts_per_block = g.cluster_size / 2;
    return g;
}

Metadata::Metadata(int fd, std::string path, const Header& header)
    : m_fd(fd), m_path(std::move(path)), m_geometry(Geometry::for_bits(header.cluster_bits)) {
    m_l1_offset = header.l1_table_offset;
    m_refcount_table_offset = header.refcount_table_offset;
    m_l2_capacity = std::max<size_t>(kMinL2Tables, kL2CacheBytes / m_geometry.cluster_size);
}

Result<std::unique_ptr<Metadata>> Metadata::load(int fd, const std::string& path,
                                                 const Header& header, uint64_t file_size,
                                                 bool writable) {
    std::unique_ptr<Metadata> meta(new Metadata(fd, path, header));
    meta->m_file_size = file_size;
    std::vector<uint8_t> bytes(uint64_t{header.l1_size} * 8);
    PV_TRY(pread_all(fd, bytes.data(), bytes.size(), header.l1_table_offset,
                     "read L1 table of " + path));
    meta->m_l1 = read_be64_array(bytes);
    for (uint64_t entry : meta->m_l1) {
        if ((entry & kL1ReservedBits) != 0 ||
            (entry & kOffsetMask & (meta->m_geometry.cluster_size - 1)) != 0)
            return fail(make_error(path, fmt_hex("corrupt L1 table entry ", entry)));
    }
    if (!writable)
        return meta;
    bytes.assign(uint64_t{header.refcount_table_clusters} * meta->m_geometry.cluster_size, 0);
    PV_TRY(pread_all(fd, bytes.data(), bytes.size(), header.refcount_table_offset,
                     "read refcount table of " + path));
    meta->m_refcount_table = read_be64_array(bytes);
    for (uint64_t entry : meta->m_refcount_table) {
        if ((entry & (meta->m_geometry.cluster_size - 1)) != 0 || entry >= file_size)
            return fail(make_error(path, fmt_hex("corrupt refcount table entry ", entry)));
    }
    // New clusters go after everything the file holds now.
    meta->m_next_free_cluster =
        (file_size + meta->m_geometry.cluster_size - 1) >> meta->m_geometry.cluster_bits;
    return meta;
}

Result<L2Table*> Metadata::l2_for_read(uint64_t l1_index) {
    if (l1_index >= m_l1.size())
        return fail(make_error(m_path, "guest offset beyond the L1 table"));
    auto found = m_l2_index.find(l1_index);
    if (found != m_l2_index.end()) {
        // Move to the front of the LRU list; iterators stay valid.
        m_l2_lru.splice(m_l2_lru.begin(), m_l2_lru, found->second);
        return &*found->second;
    }
    const uint64_t host_offset = m_l1[l1_index] & kOffsetMask;
    if (host_offset == 0)
        return nullptr;
    return load_l2(l1_index, host_offset);
}

Result<L2Table*> Metadata::l2_for_write(uint64_t l1_index) {
    L2Table* table = PV_TRY(l2_for_read(l1_index));
    if (table != nullptr) {
        if ((m_l1[l1_index] & kEntryCopied) == 0)
            return fail(make_error(m_path,
                                   "writing to an L2 table shared with a snapshot is "
                                   "not supported"));
        return table;
    }
    PV_TRY(make_room_for_l2());
    const uint64_t host_offset = PV_TRY(allocate(1));
    L2Table fresh;
    fresh.l1_index = l1_index;
    fresh.host_offset = host_offset;
    fresh.entries.assign(m_geometry.l2_entries(), 0);
    fresh.dirty = true;
    fresh.fresh = true;
    m_l2_lru.push_front(std::move(fresh));
    m_l2_index[l1_index] = m_l2_lru.begin();
    // The copied flag says the table's refcount is exactly one (qcow2 spec).
    m_l1[l1_index] = host_offset | kEntryCopied;
    m_dirty_l1.insert(l1_index);
    return &m_l2_lru.front();
}

Result<L2Table*> Metadata::load_l2(uint64_t l1_index, uint64_t host_offset) {
    PV_TRY(make_room_for_l2());
    std::vector<uint8_t> bytes(m_geometry.cluster_size);
    PV_TRY(pread_all(m_fd, bytes.data(), bytes.size(), host_offset, "read L2 table of " + m_path));
    L2Table table;
    table.l1_index = l1_index;
    table.host_offset = host_offset;
    table.entries = read_be64_array(bytes);
    m_l2_lru.push_front(std::move(table));
    m_l2_index[l1_index] = m_l2_lru.begin();
    return &m_l2_lru.front();
}

Result<void> Metadata::make_room_for_l2() {
    if (m_l2_lru.size() < m_l2_capacity)
        return {};
    // Evicting a modified table would need its refcounts on disk first;
    // a full flush keeps the write order simple and correct.
    if (m_l2_lru.back().dirty)
        PV_TRY(flush(false));
    m_l2_index.erase(m_l2_lru.back().l1_index);
    m_l2_lru.pop_back();
    return {};
}

Result<void> Metadata::write_l2(const L2Table& table) {
    std::vector<uint8_t> bytes(m_geometry.cluster_size);
    for (size_t i = 0; i < table.entries.size(); ++i)
        store_be64(&bytes[i * 8], table.entries[i]);
    return pwrite_all(m_fd, bytes.data(), bytes.size(), table.host_offset,
                      "write L2 table of " + m_path);
}

Result<void> Metadata::write_l1_entries() {
    for (uint64_t index : m_dirty_l1) {
        uint8_t bytes[8];
        store_be64(bytes, m_l1[index]);
        PV_TRY(pwrite_all(m_fd, bytes, sizeof bytes, m_l1_offset + index * 8,
                          "write L1 table of " + m_path));
    }
    m_dirty_l1.clear();
    return {};
}

}  // namespace pv::img::qcow2
