#pragma once

// Commit (DESIGN.md step 5): merge an original and the qcow2 overlay over it
// into a new, standalone target image, then install the target atomically
// over the original or at another path. The original is only ever read.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "imgfmt/image.hpp"
#include "imgfmt/lock.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"

namespace pv::img {

using ProgressCallback = std::function<void(uint64_t done, uint64_t total)>;

struct CommitOptions {
    // Target format; default: the original's (raw → raw, qcow/qcow2 → qcow2).
    std::optional<Format> format;
    // Where the merged image goes; default: over the original, atomically.
    std::optional<std::string> output;
    // When replacing: keep the original as NAME.pre-patch.
    bool keep_backup = false;
    ProgressCallback progress;
    // Called when the target is written and durable, just before it is
    // installed; an error abandons the commit with the original untouched
    // (a libvirt domain's disks are replaced all or none).
    std::function<Result<void>()> before_install;
};

struct CommitResult {
    std::string original;  // the overlay's backing file
    std::string target;    // where the merged image is now
    Format format = Format::Raw;
    uint64_t virtual_size = 0;
    uint64_t bytes_copied = 0;  // bytes moved from base and overlay into the target
    std::optional<std::string> backup;
};

// Merges OVERLAY_PATH (a qcow2 file whose backing file is the original)
// into a new image. Holds the original's lock throughout. On failure the
// target's temporary file is removed and the original is untouched.
[[nodiscard]] Result<CommitResult> commit_overlay(const std::string& overlay_path,
                                                  const CommitOptions& options);

// The same for an overlay already open, by a caller that already holds the
// original's lock (the patch job holds it from start to end). LOCK must be
// the lock of OVERLAY's backing file.
[[nodiscard]] Result<CommitResult> commit_locked(Qcow2Image& overlay, const ImageLock& lock,
                                                 const CommitOptions& options);

}  // namespace pv::img
