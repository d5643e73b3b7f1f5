#pragma once

// Opening the image a user names: format by magic (top image only), and the
// rule that a backing file named inside an image is never followed unless
// the caller allows it (qcow2 probing attacks, CVE-2010-3851).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/access.hpp"
#include "common/error.hpp"
#include "imgfmt/block_device.hpp"

namespace pv::img {

enum class Format { Raw, Qcow, Qcow2 };
enum class Backing { Refuse, Allow };

[[nodiscard]] std::string_view format_name(Format format);
[[nodiscard]] Result<Format> parse_format(std::string_view name);

// Reads the first bytes of PATH: "QFI\xfb" + version 1 → Qcow, 2 or 3 →
// Qcow2, anything else → Raw. Missing/unreadable file → error naming it.
// As in QEMU's probe, a version above 3 also counts as Qcow2, so that the
// qcow2 header check refuses it instead of handing its bytes to a guest as
// a raw disk; an empty file or a directory is an error.
[[nodiscard]] Result<Format> detect_format(const std::string& path);

struct ImageInfo {
    std::string path;
    Format format = Format::Raw;
    uint64_t virtual_size = 0;
    uint64_t file_size = 0;
    uint64_t allocated_bytes = 0;  // st_blocks * 512 of the file itself
    uint32_t cluster_size = 0;     // 0 for raw
    uint32_t version = 0;          // qcow/qcow2 header version, 0 for raw
    bool encrypted = false;
    std::optional<std::string> backing_file;    // as recorded in the header
    std::optional<std::string> backing_format;  // qcow2 header extension
};

// Header facts without opening any backing file. Validates the header
// enough that the numbers are meaningful (sizes, offsets inside the file).
[[nodiscard]] Result<ImageInfo> inspect_image(const std::string& path);
// The same for a format the user named: no probing, and a file whose header
// is not FORMAT's is an error ("PATH: not a qcow2 image (bad magic)").
[[nodiscard]] Result<ImageInfo> inspect_image(const std::string& path, Format format);

// Opens PATH as a BlockDevice. Raw images may be opened ReadWrite; qcow and
// qcow2 images are read by QcowImage and only ReadOnly. An image that
// names a backing file is refused with Backing::Refuse ("has a backing
// file ...; pass --allow-backing"); with Backing::Allow the chain is
// followed up to kMaxBackingDepth levels.
inline constexpr int kMaxBackingDepth = 8;
[[nodiscard]] Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path,
                                                              Access access, Backing backing);
// open_image for a format the user named (FORMAT is trusted over the magic).
[[nodiscard]] Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path,
                                                              Format format, Access access,
                                                              Backing backing);

}  // namespace pv::img
