#pragma once

// Where each guest cluster of a qcow (version 1) or qcow2 image lives, read
// from the image's own L1/L2 tables. libqcow 20201213 reads stored clusters
// (compressed ones included) correctly, but it ignores the qcow2 version 3
// zero flag (a zeroed cluster that keeps its old data would read as that
// data) and its parent-file support does not read backing chains the way
// QEMU does; so QcowImage asks this map first and lets libqcow read only
// the clusters that are really stored in the file.

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
    Stored,       // data or a compressed cluster in this file
};

class ClusterMap {
  public:
    // Opens PATH (FORMAT Qcow or Qcow2) read-only and loads its L1 table;
    // the header is validated first (qcow::read_header, qcow2::read_header).
    [[nodiscard]] static Result<ClusterMap> open(const std::string& path, Format format);

    // The state of the cluster holding guest byte OFFSET.
    [[nodiscard]] Result<ClusterState> lookup(uint64_t offset);
    [[nodiscard]] uint64_t cluster_size() const { return uint64_t{1} << m_cluster_bits; }

  private:
    ClusterMap() = default;
    [[nodiscard]] Result<void> load_l2(uint64_t l2_offset);
    [[nodiscard]] ClusterState decode(uint64_t entry) const;

    Fd m_fd;
    std::string m_path;
    Format m_format = Format::Qcow2;
    uint32_t m_version = 0;
    uint32_t m_cluster_bits = 0;
    uint32_t m_l2_bits = 0;  // log2 of the entries per L2 table
    uint64_t m_file_size = 0;
    std::vector<uint64_t> m_l1;
    // The last L2 table read: sequential reads stay inside one table.
    uint64_t m_l2_offset = 0;
    std::vector<uint64_t> m_l2;
};

}  // namespace pv::img::qcow
