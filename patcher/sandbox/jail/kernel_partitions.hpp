#pragma once

// Registers a disk's MBR/GPT partitions with the kernel (BLKPG), as
// partx(8) does. LO_FLAGS_PARTSCAN leaves the parsing to the kernel's
// partition parsers, and kernels built without them (CONFIG_EFI_PARTITION
// and CONFIG_MSDOS_PARTITION off, as on these machines) then show no
// /dev/loopNpM at all. The table is parsed by the agent's hardened parser
// (imgfmt/partition/partition_table.hpp), the one the agent itself
// trusts.

#include <cstddef>
#include <string>

#include "common/error.hpp"

namespace pv::sandbox {

// Adds every partition of the table on the block device open as FD (named
// NAME in errors) that the kernel does not know yet; returns how many were
// added. Partitions vanish again when the loop device is detached.
[[nodiscard]] Result<size_t> register_partitions(int fd, const std::string& name);

}  // namespace pv::sandbox
