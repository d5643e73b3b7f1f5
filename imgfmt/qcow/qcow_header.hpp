#pragma once

// The header of a qcow version 1 image (QEMU's block/qcow.c, QCowHeader):
// parsed and validated against the file size with the same limits QEMU
// applies before any other field is trusted, so a hostile or damaged file
// gives a clear error instead of reaching libqcow.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::img::qcow {

inline constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
inline constexpr uint32_t kVersion = 1;
// Fixed part of the header: magic, version, backing_file_offset,
// backing_file_size, mtime, size, cluster_bits, l2_bits, padding,
// crypt_method, l1_table_offset (big-endian).
inline constexpr size_t kHeaderSize = 48;

struct Header {
    uint64_t backing_file_offset = 0;
    uint32_t backing_file_size = 0;
    uint32_t mtime = 0;
    uint64_t size = 0;  // virtual size in bytes
    uint32_t cluster_bits = 0;
    uint32_t l2_bits = 0;
    uint32_t crypt_method = 0;  // 0 none, 1 AES
    uint64_t l1_table_offset = 0;
    uint64_t l1_size = 0;  // entries, derived from size

    std::optional<std::string> backing_file;

    [[nodiscard]] uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
};

// Validates a header already in memory. BYTES holds the start of the file
// (at least the header and, if any, the backing file name); FILE_SIZE is the
// whole file's length. PATH names the file in errors.
[[nodiscard]] Result<Header> parse_header(const std::vector<uint8_t>& bytes, uint64_t file_size,
                                          const std::string& path);

// Reads and validates the header of the qcow file open on FD.
[[nodiscard]] Result<Header> read_header(int fd, const std::string& path);

}  // namespace pv::img::qcow
