#pragma once

// ReadFile (proto/agent.proto, minor 1): one file or directory of the guest
// for the host's resolver. The guest filesystem is hostile input: every
// path resolves inside the guest root (openat2 RESOLVE_IN_ROOT), only
// regular files and directories are opened, and replies are bounded.

#include <cstddef>
#include <string>

#include "common/error.hpp"
#include "proto/agent.pb.h"

namespace pv::agent {

// Bytes of one FileData piece and the most directory entries listed: both
// keep a reply well under the 4 MiB frame limit.
inline constexpr size_t kMaxFilePiece = 1024 * 1024;
inline constexpr size_t kMaxDirectoryEntries = 8192;

// What is at PATH (absolute, in the guest mounted at ROOT): for a regular
// file its size and up to kMaxFilePiece bytes from OFFSET; for a directory
// its entry names, sorted. A missing path is KIND_MISSING, not an error.
[[nodiscard]] Result<wire::FileData> read_guest_path(const std::string& root,
                                                     const std::string& path, uint64_t offset);

}  // namespace pv::agent
