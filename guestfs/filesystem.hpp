#pragma once

// A guest's filesystem as the host reads it, in userspace and read-only,
// through the image layer (DESIGN.md "Detection": after Apply the host reads
// the overlay's package database itself and never trusts the agent). Its
// bytes are hostile input: every reader bounds what it reads and turns each
// problem into an error that names the filesystem and the path.

#include <cstddef>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::guestfs {

class GuestFilesystem {
  public:
    virtual ~GuestFilesystem() = default;
    GuestFilesystem() = default;
    GuestFilesystem(const GuestFilesystem&) = delete;
    GuestFilesystem& operator=(const GuestFilesystem&) = delete;

    // Where it is, for messages: "partition 1 (ext4 at byte 1048576) of IMAGE".
    [[nodiscard]] virtual const std::string& describe() const = 0;

    // Whether PATH (absolute, inside the guest) names anything; a final
    // symlink is not followed, so a dangling one counts, as with lstat(2).
    [[nodiscard]] virtual Result<bool> exists(const std::string& path) = 0;

    // The whole regular file at PATH, symlinks resolved inside the guest's
    // filesystem; a file larger than LIMIT bytes is an error, not truncated.
    [[nodiscard]] virtual Result<std::string> read_file(const std::string& path, size_t limit) = 0;

    // The names in the directory at PATH, without "." and ".."; more than
    // LIMIT of them is an error.
    [[nodiscard]] virtual Result<std::vector<std::string>> list_directory(const std::string& path,
                                                                          size_t limit) = 0;
};

}  // namespace pv::guestfs
