#pragma once

// The mutable metadata of an open qcow2 file: the L1 table (held whole),
// a bounded LRU cache of L2 tables, the refcount table (held whole) with a
// bounded cache of refcount blocks, and cluster allocation at the end of
// the file. Updates stay in memory until flush(), which writes them in the
// order the qcow2 spec's consistency rules need (refcounts before any
// reference, new L2 tables before the L1 entries that point at them) with
// fdatasync barriers between the steps, so that a crash at any moment can
// at worst leak clusters.

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"
#include "imgfmt/qcow2/header.hpp"

namespace pv::img::qcow2 {

struct Geometry {
    uint32_t cluster_bits = 16;
    uint64_t cluster_size = 1 << 16;
    uint32_t l2_bits = 13;                   // log2(entries per L2 table)
    uint64_t refcounts_per_block = 1 << 15;  // 16-bit refcounts

    [[nodiscard]] static Geometry for_bits(uint32_t cluster_bits);
    [[nodiscard]] uint64_t l2_entries() const { return uint64_t{1} << l2_bits; }
};

struct L2Table {
    uint64_t l1_index = 0;
    uint64_t host_offset = 0;
    std::vector<uint64_t> entries;  // host byte order
    bool dirty = false;
    bool fresh = false;  // allocated since the last flush: no L1 entry on disk yet
};

struct RefcountBlock {
    std::vector<uint16_t> counts;
    bool dirty = false;
};

class Metadata {
  public:
    // Sets up the caches of the file open on FD, as described by HEADER.
    // WRITABLE loads the refcount table (16-bit refcounts only).
    [[nodiscard]] static Result<std::unique_ptr<Metadata>> load(int fd, const std::string& path,
                                                                const Header& header,
                                                                uint64_t file_size, bool writable);

    [[nodiscard]] const Geometry& geometry() const { return m_geometry; }
    [[nodiscard]] uint64_t l1_size() const { return m_l1.size(); }

    // The L2 table for L1_INDEX, or nullptr when the L1 entry is empty. The
    // pointer stays valid until the next call that loads another table.
    [[nodiscard]] Result<L2Table*> l2_for_read(uint64_t l1_index);
    // Like l2_for_read, but allocates an empty table when there is none and
    // refuses tables shared with snapshots (no "copied" flag).
    [[nodiscard]] Result<L2Table*> l2_for_write(uint64_t l1_index);

    // Reserves COUNT contiguous clusters at the end of the file, with their
    // refcounts set to one in memory; returns the host offset of the first.
    [[nodiscard]] Result<uint64_t> allocate(uint64_t count);

    // Writes every pending update in crash-safe order and makes it durable.
    // DATA_PENDING asks for an fdatasync even if no metadata changed.
    [[nodiscard]] Result<void> flush(bool data_pending);
    [[nodiscard]] bool dirty() const;
    // Called at the start of every flush (including the ones cache
    // eviction makes), to get queued data writes onto the file first.
    void set_before_flush(std::function<Result<void>()> hook) { m_before_flush = std::move(hook); }

  private:
    Metadata(int fd, std::string path, const Header& header);

    [[nodiscard]] Result<L2Table*> load_l2(uint64_t l1_index, uint64_t host_offset);
    [[nodiscard]] Result<void> make_room_for_l2();
    [[nodiscard]] Result<void> write_l2(const L2Table& table);
    [[nodiscard]] Result<RefcountBlock*> refcount_block(uint64_t block_index, bool create);
    [[nodiscard]] Result<void> create_refcount_block(uint64_t block_index);
    [[nodiscard]] Result<void> set_refcount_one(uint64_t cluster);
    [[nodiscard]] Result<bool> cluster_free(uint64_t cluster);
    [[nodiscard]] Result<void> write_refcounts();
    [[nodiscard]] Result<void> write_l1_entries();
    [[nodiscard]] Result<void> sync();
    [[nodiscard]] size_t refcount_block_capacity() const;

    int m_fd;
    std::string m_path;
    Geometry m_geometry;
    uint64_t m_file_size = 0;

    std::vector<uint64_t> m_l1;  // host byte order
    uint64_t m_l1_offset = 0;
    std::set<uint64_t> m_dirty_l1;

    std::list<L2Table> m_l2_lru;  // most recently used first
    std::unordered_map<uint64_t, std::list<L2Table>::iterator> m_l2_index;
    size_t m_l2_capacity = 0;

    std::vector<uint64_t> m_refcount_table;  // host byte order
    uint64_t m_refcount_table_offset = 0;
    std::set<uint64_t> m_dirty_refcount_table;
    std::map<uint64_t, RefcountBlock> m_refcount_blocks;
    uint64_t m_next_free_cluster = 0;
    std::function<Result<void>()> m_before_flush;
};

}  // namespace pv::img::qcow2
