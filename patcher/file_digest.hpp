#pragma once

// The SHA-256 and size of a file the session stages, read once before the
// upload so every StageChunk can carry the digest (proto/agent.proto).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "common/error.hpp"

namespace pv::patcher {

struct FileDigest {
    std::string sha256;  // 32 raw bytes
    uint64_t size = 0;
};

// Reads FILE in pieces of BUFFER_SIZE bytes.
[[nodiscard]] Result<FileDigest> digest_file(const std::filesystem::path& file, size_t buffer_size);

}  // namespace pv::patcher
