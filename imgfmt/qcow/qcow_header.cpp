#include "imgfmt/qcow/qcow_header.hpp"

#include <sys/stat.h>

#include <climits>

#include "common/fd.hpp"

namespace pv::img::qcow {

namespace {

// QEMU refuses backing file names of 1024 bytes or more (block/qcow.c).
constexpr uint32_t kMaxBackingNameSize = 1023;

uint64_t load_be(const uint8_t* bytes, int width) {
    uint64_t value = 0;
    for (int i = 0; i < width; ++i)
        value = (value << 8) | bytes[i];
    return value;
}

Error header_error(const std::string& path, std::string detail) {
    return make_error(path, std::move(detail));
}

// The fixed fields, big-endian, after the magic and version checks.
Result<Header> decode_fixed(const uint8_t* bytes, size_t length, const std::string& path) {
    if (length < kHeaderSize)
        return fail(header_error(path, "truncated qcow header (" + std::to_string(length) + " of " +
                                           std::to_string(kHeaderSize) + " bytes)"));
    if (load_be(bytes, 4) != kMagic)
        return fail(header_error(path, "not a qcow image (bad magic)"));
    const auto version = static_cast<uint32_t>(load_be(bytes + 4, 4));
    if (version != kVersion)
        return fail(header_error(
            path, "not a qcow version 1 image (version " + std::to_string(version) + ")"));
    Header header;
    header.backing_file_offset = load_be(bytes + 8, 8);
    header.backing_file_size = static_cast<uint32_t>(load_be(bytes + 16, 4));
    header.mtime = static_cast<uint32_t>(load_be(bytes + 20, 4));
    header.size = load_be(bytes + 24, 8);
    header.cluster_bits = bytes[32];
    header.l2_bits = bytes[33];
    header.crypt_method = static_cast<uint32_t>(load_be(bytes + 36, 4));
    header.l1_table_offset = load_be(bytes + 40, 8);
    return header;
}

// QEMU's qcow_open() limits: clusters of 512 B to 64 KiB, L2 tables of
// 512 B to 64 KiB, an L1 table and a backing file name inside the file.
Result<Header> parse_fixed(const uint8_t* bytes, size_t length, uint64_t file_size,
                           const std::string& path) {
    Header header = PV_TRY(decode_fixed(bytes, length, path));
    if (header.size <= 1)
        return fail(header_error(
            path, "qcow virtual size " + std::to_string(header.size) + " is too small"));
    if (header.cluster_bits < 9 || header.cluster_bits > 16)
        return fail(header_error(path, "qcow cluster size 2^" +
                                           std::to_string(header.cluster_bits) +
                                           " is not between 512 bytes and 64 KiB"));
    if (header.l2_bits < 6 || header.l2_bits > 13)
        return fail(header_error(path, "qcow L2 table size 2^" +
                                           std::to_string(header.l2_bits + 3) +
                                           " is not between 512 bytes and 64 KiB"));
    if (header.crypt_method > 1)
        return fail(header_error(
            path, "unknown qcow encryption method " + std::to_string(header.crypt_method)));
    const unsigned shift = header.cluster_bits + header.l2_bits;
    if (header.size > UINT64_MAX - (uint64_t{1} << shift))
        return fail(header_error(
            path, "qcow virtual size " + std::to_string(header.size) + " is absurdly large"));
    header.l1_size = (header.size + (uint64_t{1} << shift) - 1) >> shift;
    if (header.l1_size > INT_MAX / sizeof(uint64_t))
        return fail(header_error(path, "qcow virtual size " + std::to_string(header.size) +
                                           " is absurdly large (L1 table of " +
                                           std::to_string(header.l1_size) + " entries)"));
    const uint64_t l1_bytes = header.l1_size * sizeof(uint64_t);
    if (header.l1_table_offset > file_size || l1_bytes > file_size - header.l1_table_offset)
        return fail(header_error(path, "qcow L1 table lies past the end of the file"));
    if (header.backing_file_offset != 0) {
        if (header.backing_file_size == 0 || header.backing_file_size > kMaxBackingNameSize)
            return fail(header_error(path, "qcow backing file name length " +
                                               std::to_string(header.backing_file_size) +
                                               " is invalid"));
        if (header.backing_file_offset > file_size ||
            header.backing_file_size > file_size - header.backing_file_offset)
            return fail(header_error(path, "qcow backing file name lies past the end of the file"));
    }
    return header;
}

}  // namespace

Result<Header> parse_header(const std::vector<uint8_t>& bytes, uint64_t file_size,
                            const std::string& path) {
    Header header = PV_TRY(parse_fixed(bytes.data(), bytes.size(), file_size, path));
    if (header.backing_file_offset != 0) {
        const uint64_t end = header.backing_file_offset + header.backing_file_size;
        if (end > bytes.size())
            return fail(header_error(path, "qcow backing file name lies past the end of the file"));
        header.backing_file =
            std::string(reinterpret_cast<const char*>(bytes.data() + header.backing_file_offset),
                        header.backing_file_size);
    }
    return header;
}

Result<Header> read_header(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return fail(errno_error("stat " + path));
    const auto file_size = static_cast<uint64_t>(st.st_size);
    uint8_t fixed[kHeaderSize] = {};
    const size_t length = file_size < kHeaderSize ? static_cast<size_t>(file_size) : kHeaderSize;
    PV_TRY(pread_all(fd, fixed, length, 0, "read qcow header of " + path));
    Header header = PV_TRY(parse_fixed(fixed, length, file_size, path));
    if (header.backing_file_offset != 0) {
        std::string name(header.backing_file_size, '\0');
        PV_TRY(pread_all(fd, name.data(), name.size(), header.backing_file_offset,
                         "read qcow backing file name of " + path));
        header.backing_file = std::move(name);
    }
    return header;
}

}  // namespace pv::img::qcow
