#pragma once

// What an open Qcow2Image holds; shared by the files that implement it.

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "imgfmt/qcow2/header.hpp"
#include "imgfmt/qcow2/metadata.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/qcow2/write_behind.hpp"

struct iovec;

namespace pv::img {

struct Qcow2Image::State {
    std::string path;
    Fd fd;
    Access access = Access::ReadOnly;
    qcow2::Header header;
    std::unique_ptr<qcow2::Metadata> meta;
    std::unique_ptr<BlockDevice> backing;
    // Data written since the last fdatasync (flush needs a barrier even
    // when no metadata changed).
    bool data_pending = false;
    // Scratch clusters for the head and tail of partial-cluster writes.
    std::vector<std::byte> head_fill;
    std::vector<std::byte> tail_fill;
    // A second descriptor with O_DIRECT for large aligned data writes and
    // the worker that writes them (data_io.cpp); unset where the filesystem
    // does not support O_DIRECT. Declared last: destroyed (drained) first.
    Fd direct_fd;
    std::unique_ptr<qcow2::WriteBehind> write_behind;
};

namespace qcow2 {

// What an L2 entry says about one guest cluster (qcow2 spec, "Cluster
// mapping", standard and compressed cluster descriptors).
enum class ClusterKind { Unallocated, Zero, ZeroAllocated, Data, Compressed };

// A run of guest bytes starting at some offset whose clusters have the same
// kind and, for stored clusters, contiguous host offsets.
struct Run {
    ClusterKind kind = ClusterKind::Unallocated;
    uint64_t host = 0;  // host offset of the run's first byte, 0 if none
    uint64_t length = 0;
    bool copied = false;
    uint64_t l2_index = 0;  // entry of the run's first cluster
};

[[nodiscard]] Result<Run> find_run(Qcow2Image::State& state, const L2Table* table, uint64_t pos,
                                   uint64_t remaining);
[[nodiscard]] uint64_t l1_index_of(const Qcow2Image::State& state, uint64_t guest_offset);

// Reads guest bytes [POS, POS + OUT.size()) of the backing device: zeroes
// past its end or without one.
[[nodiscard]] Result<void> read_backing(Qcow2Image::State& state, std::span<std::byte> out,
                                        uint64_t pos);

// Writes the iovecs to host offset HOST (data clusters only).
[[nodiscard]] Result<void> write_host(Qcow2Image::State& state, iovec* iov, int count,
                                      uint64_t host);
void open_direct(Qcow2Image::State& state);
// Waits for queued data writes (before reads of the file and fdatasync).
[[nodiscard]] Result<void> drain_writes(Qcow2Image::State& state);

// Opens the qcow2 file at PATH with BACKING (may be null) already resolved.
[[nodiscard]] Result<std::unique_ptr<Qcow2Image::State>> open_state(
    const std::string& path, Access access, std::unique_ptr<BlockDevice> backing);

}  // namespace qcow2
}  // namespace pv::img
