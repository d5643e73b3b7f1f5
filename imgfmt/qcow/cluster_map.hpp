#pragma once

// Where each guest cluster of a qcow (version 1) or qcow2 image lives, read
// from the image's own L1/L2 tables (qcow2 spec, "Cluster mapping"; QEMU's
// block/qcow.c for version 1). QcowImage reads every cluster through this
// map: zero clusters read as zeroes, unallocated ones come from the backing
// device, data clusters are read with pread and compressed ones through
// libqcow (LibqcowFile). open() checks every L1 and L2 entry of the image
// once, before any byte reaches libqcow: libqcow 20201213 trusts the tables
// and read past its own buffers on hostile ones. After the check libqcow
// finds, for every compressed cluster, the same L2 entry we do and reads a
// compressed extent that starts inside the file (it stops its own read at
// the end of the file). Whether a cluster's deflate stream fills the cluster
// is checked when it is read (deflate_check.hpp).

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "imgfmt/image.hpp"

namespace pv::img::qcow {

enum class ClusterState {
    Unallocated,  // not in this file: read the backing file, or zeroes
    Zero,         // qcow2 v3 zero flag: reads as zeroes whatever is stored
    Data,         // a whole cluster stored at host_offset
    Compressed,   // deflated data of compressed_size bytes at host_offset
};

struct Cluster {
    ClusterState state = ClusterState::Unallocated;
    uint64_t host_offset = 0;
    // Compressed clusters only: the bytes to read at host_offset. Their
    // last sector may run past the end of the file (QEMU writes them that
    // way), and those bytes read as zeroes; host_offset itself is inside.
    uint64_t compressed_size = 0;

    friend bool operator==(const Cluster&, const Cluster&) = default;
};

class ClusterMap {
  public:
    // Opens PATH (FORMAT Qcow or Qcow2) read-only, loads its L1 table and
    // checks every L1 and L2 entry (validate_tables); the header is
    // validated first (qcow::read_header, qcow2::read_header). A bad entry
    // refuses the image with an error naming the file and the entry.
    [[nodiscard]] static Result<ClusterMap> open(const std::string& path, Format format);

    // Where the cluster holding guest byte OFFSET lives.
    [[nodiscard]] Result<Cluster> lookup(uint64_t offset);
    [[nodiscard]] uint64_t cluster_size() const { return uint64_t{1} << m_cluster_bits; }
    [[nodiscard]] uint64_t virtual_size() const { return m_virtual_size; }
    [[nodiscard]] uint64_t file_size() const { return m_file_size; }
    // Whether any L2 entry maps a compressed cluster (libqcow is only
    // opened for such images).
    [[nodiscard]] bool has_compressed() const { return m_has_compressed; }
    // The image file, for reading the clusters lookup() returns.
    [[nodiscard]] int fd() const { return m_fd.get(); }

  private:
    ClusterMap() = default;
    [[nodiscard]] Result<void> validate_tables();
    [[nodiscard]] Result<uint64_t> l2_offset_of(uint64_t l1_index) const;
    [[nodiscard]] Result<void> load_l2(uint64_t l2_offset);
    [[nodiscard]] Result<Cluster> decode(uint64_t entry) const;
    [[nodiscard]] Result<Cluster> decode_compressed(uint64_t entry) const;

    Fd m_fd;
    std::string m_path;
    Format m_format = Format::Qcow2;
    uint32_t m_version = 0;
    uint32_t m_cluster_bits = 0;
    uint32_t m_l2_bits = 0;  // log2 of the entries per L2 table
    uint64_t m_virtual_size = 0;
    uint64_t m_file_size = 0;
    std::vector<uint64_t> m_l1;
    // The last L2 table read: sequential reads stay inside one table.
    uint64_t m_l2_offset = 0;
    std::vector<uint64_t> m_l2;
    bool m_has_compressed = false;
};

}  // namespace pv::img::qcow
