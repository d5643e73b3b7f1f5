// Cluster allocation and the crash-safe flush of Metadata (qcow2 spec,
// "Host cluster management": a cluster is in use exactly when its refcount
// is non-zero; a refcount above the number of references is a leak, one
// below it is corruption, so refcounts always reach the disk first).

#include <unistd.h>

#include <algorithm>

#include "common/fd.hpp"
#include "imgfmt/qcow2/endian.hpp"
#include "imgfmt/qcow2/metadata.hpp"

namespace pv::img::qcow2 {
namespace {

// Allocation only ever touches the last refcount blocks, so a few suffice;
// small clusters get more (a 512-byte block covers only 128 KiB of file).
constexpr size_t kRefcountBlockBytes = 4ull << 20;
constexpr size_t kMinRefcountBlocks = 32;

}  // namespace

size_t Metadata::refcount_block_capacity() const {
    return std::max<size_t>(kMinRefcountBlocks, kRefcountBlockBytes / m_geometry.cluster_size);
}

Result<RefcountBlock*> Metadata::refcount_block(uint64_t block_index, bool create) {
    auto found = m_refcount_blocks.find(block_index);
    if (found != m_refcount_blocks.end())
        return &found->second;
    if (block_index >= m_refcount_table.size())
        return fail(make_error(m_path, "the refcount table is full; growing it is not supported"));
    if (m_refcount_table[block_index] == 0) {
        if (!create)
            return nullptr;
        PV_TRY(create_refcount_block(block_index));
        return refcount_block(block_index, false);
    }
    if (m_refcount_blocks.size() >= refcount_block_capacity()) {
        PV_TRY(flush(false));
        m_refcount_blocks.clear();
    }
    std::vector<uint8_t> bytes(m_geometry.cluster_size);
    PV_TRY(pread_all(m_fd, bytes.data(), bytes.size(), m_refcount_table[block_index],
                     "read refcount block of " + m_path));
    RefcountBlock block;
    block.counts.resize(m_geometry.refcounts_per_block);
    for (size_t i = 0; i < block.counts.size(); ++i)
        block.counts[i] = load_be16(&bytes[i * 2]);
    return &m_refcount_blocks.emplace(block_index, std::move(block)).first->second;
}

// A new refcount block goes in the next free cluster; it counts itself
// there (or in the block covering that cluster), like QEMU's self-describing
// refcount blocks.
Result<void> Metadata::create_refcount_block(uint64_t block_index) {
    if (m_refcount_blocks.size() >= refcount_block_capacity()) {
        PV_TRY(flush(false));
        m_refcount_blocks.clear();
    }
    const uint64_t cluster = m_next_free_cluster++;
    RefcountBlock block;
    block.counts.assign(m_geometry.refcounts_per_block, 0);
    block.dirty = true;
    m_refcount_blocks.emplace(block_index, std::move(block));
    m_refcount_table[block_index] = cluster << m_geometry.cluster_bits;
    m_dirty_refcount_table.insert(block_index);
    return set_refcount_one(cluster);
}

Result<void> Metadata::set_refcount_one(uint64_t cluster) {
    RefcountBlock* block = PV_TRY(refcount_block(cluster / m_geometry.refcounts_per_block, true));
    block->counts[cluster % m_geometry.refcounts_per_block] = 1;
    block->dirty = true;
    return {};
}

Result<bool> Metadata::cluster_free(uint64_t cluster) {
    RefcountBlock* block = PV_TRY(refcount_block(cluster / m_geometry.refcounts_per_block, false));
    return block == nullptr || block->counts[cluster % m_geometry.refcounts_per_block] == 0;
}

Result<uint64_t> Metadata::allocate(uint64_t count) {
    if (m_refcount_table.empty())
        return fail(make_error(m_path, "image is open read-only"));
    const uint64_t per_block = m_geometry.refcounts_per_block;
    for (;;) {
        const uint64_t start = m_next_free_cluster;
        // Refcount blocks for the run come first so that the run itself
        // stays contiguous (one pwrite for the data).
        bool moved = false;
        for (uint64_t b = start / per_block; b <= (start + count - 1) / per_block && !moved; ++b) {
            RefcountBlock* block = PV_TRY(refcount_block(b, false));
            if (block == nullptr) {
                PV_TRY(create_refcount_block(b));
                moved = true;
            }
        }
        if (moved)
            continue;
        // Clusters past the end of a foreign file may still carry refcounts
        // (preallocated metadata); skip them rather than double-allocate.
        for (uint64_t c = start; c < start + count && !moved; ++c) {
            if (!PV_TRY(cluster_free(c))) {
                m_next_free_cluster = c + 1;
                moved = true;
            }
        }
        if (moved)
            continue;
        for (uint64_t c = start; c < start + count; ++c)
            PV_TRY(set_refcount_one(c));
        m_next_free_cluster = start + count;
        return start << m_geometry.cluster_bits;
    }
}

Result<void> Metadata::write_refcounts() {
    std::vector<uint8_t> bytes(m_geometry.cluster_size);
    for (auto& [index, block] : m_refcount_blocks) {
        if (!block.dirty)
            continue;
        for (size_t i = 0; i < block.counts.size(); ++i)
            store_be16(&bytes[i * 2], block.counts[i]);
        PV_TRY(pwrite_all(m_fd, bytes.data(), bytes.size(), m_refcount_table[index],
                          "write refcount block of " + m_path));
        block.dirty = false;
    }
    if (m_dirty_refcount_table.empty())
        return {};
    // A refcount table entry must never point at a block not yet on disk.
    PV_TRY(sync());
    for (uint64_t index : m_dirty_refcount_table) {
        uint8_t entry[8];
        store_be64(entry, m_refcount_table[index]);
        PV_TRY(pwrite_all(m_fd, entry, sizeof entry, m_refcount_table_offset + index * 8,
                          "write refcount table of " + m_path));
    }
    m_dirty_refcount_table.clear();
    return {};
}

bool Metadata::dirty() const {
    if (!m_dirty_l1.empty() || !m_dirty_refcount_table.empty())
        return true;
    for (const auto& [index, block] : m_refcount_blocks)
        if (block.dirty)
            return true;
    for (const L2Table& table : m_l2_lru)
        if (table.dirty)
            return true;
    return false;
}

// Step 1: new L2 tables (unreachable until their L1 entry is written) and
// refcounts, then a barrier. Step 2: the updated L2 tables and L1 entries,
// which may now reference the newly counted clusters, then a barrier. The
// data of new clusters was written before any of this (qcow2 spec order:
// data, refcounts, L2, L1).
Result<void> Metadata::flush(bool data_pending) {
    if (m_before_flush)
        PV_TRY(m_before_flush());
    bool step_one = !m_dirty_refcount_table.empty();
    for (const auto& [index, block] : m_refcount_blocks)
        step_one = step_one || block.dirty;
    for (L2Table& table : m_l2_lru) {
        if (!table.fresh)
            continue;
        PV_TRY(write_l2(table));
        table.fresh = false;
        table.dirty = false;
        step_one = true;
    }
    if (step_one) {
        PV_TRY(write_refcounts());
        PV_TRY(sync());
    }
    bool step_two = !m_dirty_l1.empty();
    for (L2Table& table : m_l2_lru) {
        if (!table.dirty)
            continue;
        PV_TRY(write_l2(table));
        table.dirty = false;
        step_two = true;
    }
    PV_TRY(write_l1_entries());
    if (step_two || (data_pending && !step_one))
        PV_TRY(sync());
    return {};
}

Result<void> Metadata::sync() {
    if (::fdatasync(m_fd) != 0)
        return fail(errno_error("fdatasync " + m_path));
    return {};
}

}  // namespace pv::img::qcow2
