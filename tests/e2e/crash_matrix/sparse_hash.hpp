#pragma once

#include <string>

namespace pv::test {

// Lower-case hex SHA-256 of a file's bytes, like sha256_of_file, but holes
// (SEEK_HOLE) are hashed as zeros from memory instead of read: the 1 GiB
// sample is mostly holes, and reading them costs seconds of kernel time on
// a loaded machine. "" if unreadable.
[[nodiscard]] std::string sparse_sha256(const std::string& path);

}  // namespace pv::test
