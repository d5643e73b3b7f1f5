#pragma once

// The qcow2 header (qcow2 spec, "Header" and "Header extensions"): parsed
// and validated against the file size before any other field is trusted, so
// that a hostile or damaged file gives a clear error, never a wild read.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::img::qcow2 {

inline constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"

struct Header {
    uint32_t version = 3;
    uint64_t backing_file_offset = 0;
    uint32_t backing_file_size = 0;
    uint32_t cluster_bits = 16;
    uint64_t size = 0;  // virtual size in bytes
    uint32_t crypt_method = 0;
    uint32_t l1_size = 0;  // entries
    uint64_t l1_table_offset = 0;
    uint64_t refcount_table_offset = 0;
    uint32_t refcount_table_clusters = 0;
    uint32_t nb_snapshots = 0;
    uint64_t snapshots_offset = 0;
    // Version 3 fields (defaults for version 2).
    uint64_t incompatible_features = 0;
    uint64_t compatible_features = 0;
    uint64_t autoclear_features = 0;
    uint32_t refcount_order = 4;
    uint32_t header_length = 104;
    uint8_t compression_type = 0;

    std::optional<std::string> backing_file;
    std::optional<std::string> backing_format;  // extension 0xe2792aca

    [[nodiscard]] uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
};

// Reads and validates the header of the qcow2 file open on FD; PATH names
// it in errors ("PATH: not a qcow2 image (bad magic)", "PATH: L1 table
// lies past the end of the file", ...).
[[nodiscard]] Result<Header> read_header(int fd, const std::string& path);

// Validates a header image already in memory (FILE_SIZE bytes long file);
// the part of read_header that fuzzing exercises.
[[nodiscard]] Result<Header> parse_header(const std::vector<uint8_t>& bytes, uint64_t file_size,
                                          const std::string& path);

// The header cluster for HEADER (version 3), with the backing-format
// extension and the backing file name.
[[nodiscard]] Result<std::vector<uint8_t>> serialize_header(const Header& header);

}  // namespace pv::img::qcow2
