#pragma once

// The one check on a compressed cluster that the tables cannot give:
// whether its deflate stream fills the whole cluster. libqcow 20201213
// inflates into a fresh malloc()ed cluster buffer and ignores how many
// bytes came out (its own "TODO check safe_cluster_block_data_size"): a
// stream that ends early hands back the rest of the buffer uninitialized,
// i.e. whatever our heap held there, where QEMU fails the read with EIO.
// QcowImage runs this check before it asks libqcow for a cluster.

#include <cstdint>
#include <string>

#include "common/error.hpp"
#include "imgfmt/qcow/cluster_map.hpp"

namespace pv::img::qcow {

// Reads CLUSTER's compressed bytes from FD (a file of FILE_SIZE bytes;
// bytes of the last sector past its end count as zeroes, as in QEMU) and
// inflates them, raw deflate as QEMU writes them, into a small scratch
// buffer, counting the output: an error naming WHAT unless it fills exactly
// CLUSTER_SIZE bytes (input left over after that, the rest of the last
// sector, is ignored, as in QEMU).
[[nodiscard]] Result<void> check_fills_cluster(int fd, uint64_t file_size, const Cluster& cluster,
                                               uint64_t cluster_size, const std::string& what);

}  // namespace pv::img::qcow
