#pragma once

// Internal to imgfmt: the first look at a file the user names, shared by
// detect_format, inspect_image and open_image so that they agree on what a
// file is and complain about bad files in the same words.

#include <cstdint>
#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "imgfmt/image.hpp"

namespace pv::img::detail {

struct Probe {
    Fd fd;
    Format format = Format::Raw;
    uint64_t file_size = 0;  // bytes (a block device's full size)
    uint64_t allocated_bytes = 0;
};

// Opens PATH read-only and reads its magic. A directory, an empty file or a
// file that is neither regular nor a block device is an error.
[[nodiscard]] Result<Probe> probe(const std::string& path);

// Header facts plus what open_image needs beyond ImageInfo.
struct Inspection {
    ImageInfo info;
    uint64_t incompatible_features = 0;  // qcow2 version 3, 0 otherwise
};

// inspect_image for a file already probed; FORMAT overrides the magic when
// the user named the format.
[[nodiscard]] Result<Inspection> inspect(const std::string& path, Probe& probe, Format format);

}  // namespace pv::img::detail
