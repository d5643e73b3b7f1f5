#pragma once

// Chunked upload of patch files into a staging directory inside the guest
// filesystem, where the guest's package manager can read them in its chroot.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "agent/sha256.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "proto/agent.pb.h"

namespace pv::agent {

// Limits against a confused or hostile host; errors carry EFBIG.
inline constexpr uint64_t kMaxStagedFileSize = 2ull << 30;
inline constexpr uint64_t kMaxStagedTotalSize = 8ull << 30;

// The staging directory as the chroot sees it.
inline constexpr const char* kStagingDirectory = "/.pv-agent-staging";

// Names are single path components of a restricted alphabet, so a name can
// neither escape the directory nor surprise a package manager's parser.
[[nodiscard]] bool is_safe_file_name(const std::string& name);

class Stager {
  public:
    // Creates the staging directory in the guest mounted at `root`.
    [[nodiscard]] static Result<Stager> create(const std::string& root);

    Stager(Stager&&) noexcept = default;
    Stager& operator=(Stager&&) noexcept = default;
    ~Stager();

    // Writes one chunk. Chunks of a file arrive in order; a new offset-0
    // chunk restarts the file. Returns true when the file is complete and its
    // SHA-256 matched. Errors: EPROTO (bad or out-of-order chunk), EFBIG
    // (limit), EBADMSG (checksum mismatch), or the failing call's errno.
    [[nodiscard]] Result<bool> write_chunk(const wire::StageChunk& chunk);

    // The chroot path of a completely staged file.
    [[nodiscard]] Result<std::string> staged_path(const std::string& name) const;

    // Deletes every staged file and the directory.
    [[nodiscard]] Result<void> remove_all();

  private:
    struct Upload {
        Fd fd;
        uint64_t total_size = 0;
        uint64_t received = 0;
        std::string expected_sha256;
        Sha256 hash;
        bool complete = false;
    };

    Stager(std::string root, Fd directory)
        : m_root(std::move(root)), m_directory(std::move(directory)) {}

    [[nodiscard]] Result<void> start_upload(const wire::StageChunk& chunk);
    [[nodiscard]] Result<bool> finish_upload(const std::string& name, Upload& upload);

    std::string m_root;
    Fd m_directory;
    std::map<std::string, Upload> m_uploads;
    uint64_t m_total_size = 0;
};

}  // namespace pv::agent
