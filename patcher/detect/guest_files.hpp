#pragma once

// The guest's own files, for sources that resolve against more than the
// package list (patcher/repo: the dpkg status file, apt preferences,
// keyrings). One small seam with two readers in mind: the agent's ReadFile
// (patcher/job/session_guest_files.hpp; what the job uses today, before any
// guest code has run) and a host-side reader of the overlay's filesystem
// through the image layer, which can replace it without touching the sources.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::patcher {

class GuestFiles {
  public:
    virtual ~GuestFiles() = default;
    // The regular file at PATH (absolute in the guest; symlinks resolve
    // inside the guest), or nullopt when nothing is there. Anything else at
    // PATH, or more than LIMIT bytes, is an error.
    [[nodiscard]] virtual Result<std::optional<std::string>> read(const std::string& path,
                                                                  uint64_t limit) = 0;
    // The entry names of the directory at PATH, sorted; empty when nothing
    // is there. Anything else at PATH is an error.
    [[nodiscard]] virtual Result<std::vector<std::string>> list(const std::string& path) = 0;
};

}  // namespace pv::patcher
