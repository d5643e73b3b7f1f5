#include "imgfmt/qcow2/header.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

#include "common/fd.hpp"
#include "imgfmt/qcow2/endian.hpp"
#include "imgfmt/qcow2/limits.hpp"

namespace pv::img::qcow2 {
namespace {

// Byte offsets of the header fields (qcow2 spec, "Header").
constexpr size_t kVersion2HeaderLength = 72;
constexpr size_t kVersion3HeaderLength = 104;
constexpr uint32_t kExtensionEnd = 0;
constexpr uint32_t kExtensionBackingFormat = 0xe2792aca;

tl::unexpected<Error> bad(const std::string& path, const std::string& problem) {
    return fail(make_error(path, problem));
}

void parse_fixed_fields(const uint8_t* p, size_t have, Header& h) {
    h.version = load_be32(p + 4);
    h.backing_file_offset = load_be64(p + 8);
    h.backing_file_size = load_be32(p + 16);
    h.cluster_bits = load_be32(p + 20);
    h.size = load_be64(p + 24);
    h.crypt_method = load_be32(p + 32);
    h.l1_size = load_be32(p + 36);
    h.l1_table_offset = load_be64(p + 40);
    h.refcount_table_offset = load_be64(p + 48);
    h.refcount_table_clusters = load_be32(p + 56);
    h.nb_snapshots = load_be32(p + 60);
    h.snapshots_offset = load_be64(p + 64);
    if (h.version < 3) {
        // Version 2 has none of the later fields; the spec gives their
        // implied values (16-bit refcounts, no features).
        h.refcount_order = 4;
        h.header_length = kVersion2HeaderLength;
        return;
    }
    // A version 3 header shorter than its fixed fields is refused by
    // check_basics(); its later fields are not there to read.
    if (have < kVersion3HeaderLength)
        return;
    h.incompatible_features = load_be64(p + 72);
    h.compatible_features = load_be64(p + 80);
    h.autoclear_features = load_be64(p + 88);
    h.refcount_order = load_be32(p + 96);
    h.header_length = load_be32(p + 100);
}

// True when [offset, offset + length) lies inside a file of FILE_SIZE bytes.
bool inside(uint64_t offset, uint64_t length, uint64_t file_size) {
    return offset <= file_size && length <= file_size - offset;
}

Result<void> check_basics(const Header& h, size_t have, const std::string& path) {
    if (h.version != 2 && h.version != 3)
        return bad(path, "unsupported qcow2 version " + std::to_string(h.version));
    if (h.version == 3 && have < kVersion3HeaderLength)
        return bad(path, "truncated qcow2 header");
    if (h.cluster_bits < kMinClusterBits || h.cluster_bits > kMaxClusterBits)
        return bad(path, "cluster_bits " + std::to_string(h.cluster_bits) + " is out of range");
    if (h.header_length < (h.version == 2 ? kVersion2HeaderLength : kVersion3HeaderLength) ||
        h.header_length % 8 != 0 || h.header_length > h.cluster_size())
        return bad(path, "invalid header_length " + std::to_string(h.header_length));
    if (h.refcount_order > 6)
        return bad(path, "refcount_order " + std::to_string(h.refcount_order) + " is invalid");
    if (h.crypt_method > 2)
        return bad(path, "unknown encryption method " + std::to_string(h.crypt_method));
    const uint64_t unknown = h.incompatible_features & ~kKnownIncompatibleFeatures;
    if (unknown != 0)
        return bad(path, fmt_hex("unknown incompatible feature bits ", unknown));
    return {};
}

Result<void> check_l1(const Header& h, uint64_t file_size, const std::string& path) {
    if (h.size > kMaxVirtualSize)
        return bad(path, "virtual size " + std::to_string(h.size) + " is absurd");
    const uint64_t needed = l1_entries_for(h.size, h.cluster_bits);
    if (h.l1_size > kMaxL1Bytes / 8)
        return bad(path, "L1 table size " + std::to_string(h.l1_size) + " is absurd");
    if (needed > h.l1_size)
        return bad(path, "L1 table (" + std::to_string(h.l1_size) +
                             " entries) is too small for the virtual size");
    if (h.l1_size == 0)
        return {};
    if (h.l1_table_offset % h.cluster_size() != 0)
        return bad(path, "L1 table offset is not cluster aligned");
    if (!inside(h.l1_table_offset, uint64_t{h.l1_size} * 8, file_size))
        return bad(path, "L1 table lies past the end of the file");
    return {};
}

Result<void> check_tables(const Header& h, uint64_t file_size, const std::string& path) {
    PV_TRY(check_l1(h, file_size, path));
    if (h.refcount_table_offset % h.cluster_size() != 0)
        return bad(path, "refcount table offset is not cluster aligned");
    if (h.refcount_table_clusters == 0 ||
        uint64_t{h.refcount_table_clusters} * h.cluster_size() > kMaxRefcountTableBytes)
        return bad(path, "refcount table size " + std::to_string(h.refcount_table_clusters) +
                             " clusters is invalid");
    if (!inside(h.refcount_table_offset, uint64_t{h.refcount_table_clusters} * h.cluster_size(),
                file_size))
        return bad(path, "refcount table lies past the end of the file");
    if (h.nb_snapshots > 0 &&
        (h.snapshots_offset % h.cluster_size() != 0 || !inside(h.snapshots_offset, 1, file_size)))
        return bad(path, "snapshot table lies outside the file");
    return {};
}

// Walks the header extensions that follow the fixed header (qcow2 spec,
// "Header extensions"); the walk cannot leave the bytes we hold.
Result<void> parse_extensions(const std::vector<uint8_t>& bytes, uint64_t end, Header& h,
                              const std::string& path) {
    uint64_t pos = h.header_length;
    for (;;) {
        if (pos + 8 > end)
            return {};  // Version 2 files may end the header without an end marker.
        const uint32_t type = load_be32(&bytes[pos]);
        const uint32_t length = load_be32(&bytes[pos + 4]);
        if (type == kExtensionEnd)
            return {};
        if (length > end - pos - 8)
            return bad(path, "header extension runs past the header");
        if (type == kExtensionBackingFormat) {
            if (length > kMaxBackingNameLength)
                return bad(path, "backing format name is too long");
            h.backing_format = std::string(reinterpret_cast<const char*>(&bytes[pos + 8]), length);
        }
        pos += 8 + ((uint64_t{length} + 7) & ~uint64_t{7});
    }
}

Result<void> parse_backing_name(const std::vector<uint8_t>& bytes, Header& h,
                                const std::string& path) {
    if (h.backing_file_offset == 0)
        return {};
    if (h.backing_file_size == 0 || h.backing_file_size > kMaxBackingNameLength)
        return bad(path, "backing file name length " + std::to_string(h.backing_file_size) +
                             " is invalid");
    if (!inside(h.backing_file_offset, h.backing_file_size, bytes.size()) ||
        h.backing_file_offset + h.backing_file_size > h.cluster_size())
        return bad(path, "backing file name lies outside the header cluster");
    h.backing_file = std::string(reinterpret_cast<const char*>(&bytes[h.backing_file_offset]),
                                 h.backing_file_size);
    return {};
}

}  // namespace

std::string fmt_hex(const std::string& prefix, uint64_t value) {
    char text[32];
    std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
    return prefix + text;
}

uint64_t l1_entries_for(uint64_t virtual_size, uint32_t cluster_bits) {
    // One L2 table maps cluster_size / 8 clusters.
    const uint32_t shift = 2 * cluster_bits - 3;
    const uint64_t mask = (uint64_t{1} << shift) - 1;
    return (virtual_size >> shift) + ((virtual_size & mask) != 0 ? 1 : 0);
}

Result<Header> parse_header(const std::vector<uint8_t>& bytes, uint64_t file_size,
                            const std::string& path) {
    if (bytes.size() < 8 || file_size < 8)
        return bad(path, "not a qcow2 image (file too short)");
    if (load_be32(bytes.data()) != kMagic)
        return bad(path, "not a qcow2 image (bad magic)");
    if (bytes.size() < kVersion2HeaderLength || file_size < kVersion2HeaderLength)
        return bad(path, "truncated qcow2 header");
    Header h;
    parse_fixed_fields(bytes.data(), bytes.size(), h);
    PV_TRY(check_basics(h, bytes.size(), path));
    if (h.header_length > kVersion3HeaderLength && bytes.size() > kVersion3HeaderLength)
        h.compression_type = bytes[kVersion3HeaderLength];
    PV_TRY(check_tables(h, file_size, path));
    uint64_t end = std::min<uint64_t>(bytes.size(), h.cluster_size());
    if (h.backing_file_offset > 0)
        end = std::min(end, h.backing_file_offset);
    if (h.header_length > end && h.backing_file_offset > 0)
        return bad(path, "backing file name overlaps the header");
    PV_TRY(parse_extensions(bytes, std::max<uint64_t>(end, h.header_length), h, path));
    PV_TRY(parse_backing_name(bytes, h, path));
    return h;
}

Result<Header> read_header(int fd, const std::string& path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        return fail(errno_error("stat " + path));
    const auto file_size = static_cast<uint64_t>(st.st_size);
    // The header and its extensions live in the first cluster; read the
    // largest possible one, bounded by the file, then let the parser judge.
    std::vector<uint8_t> bytes(std::min<uint64_t>(file_size, kVersion3HeaderLength));
    PV_TRY(pread_all(fd, bytes.data(), bytes.size(), 0, "read " + path));
    if (bytes.size() >= 24 && load_be32(bytes.data()) == kMagic) {
        const uint32_t cluster_bits = load_be32(&bytes[20]);
        if (cluster_bits >= kMinClusterBits && cluster_bits <= kMaxClusterBits) {
            bytes.resize(std::min<uint64_t>(file_size, uint64_t{1} << cluster_bits));
            PV_TRY(pread_all(fd, bytes.data(), bytes.size(), 0, "read " + path));
        }
    }
    return parse_header(bytes, file_size, path);
}

Result<std::vector<uint8_t>> serialize_header(const Header& h) {
    std::vector<uint8_t> out(h.cluster_size(), 0);
    uint8_t* p = out.data();
    store_be32(p, kMagic);
    store_be32(p + 4, 3);
    store_be32(p + 20, h.cluster_bits);
    store_be64(p + 24, h.size);
    store_be32(p + 32, h.crypt_method);
    store_be32(p + 36, h.l1_size);
    store_be64(p + 40, h.l1_table_offset);
    store_be64(p + 48, h.refcount_table_offset);
    store_be32(p + 56, h.refcount_table_clusters);
    store_be32(p + 60, h.nb_snapshots);
    store_be64(p + 64, h.snapshots_offset);
    store_be64(p + 72, h.incompatible_features);
    store_be64(p + 80, h.compatible_features);
    store_be64(p + 88, h.autoclear_features);
    store_be32(p + 96, h.refcount_order);
    store_be32(p + 100, kVersion3HeaderLength);
    size_t pos = kVersion3HeaderLength;
    const size_t format_length = h.backing_format ? h.backing_format->size() : 0;
    const size_t name_length = h.backing_file ? h.backing_file->size() : 0;
    if (format_length > kMaxBackingNameLength || name_length > kMaxBackingNameLength)
        return fail(make_error("write qcow2 header", "backing file name or format too long"));
    if (pos + 16 + format_length + 8 + name_length > out.size())
        return fail(make_error("write qcow2 header", "backing file name does not fit the cluster"));
    if (h.backing_format) {
        store_be32(p + pos, kExtensionBackingFormat);
        store_be32(p + pos + 4, static_cast<uint32_t>(format_length));
        std::copy(h.backing_format->begin(), h.backing_format->end(), p + pos + 8);
        pos += 8 + ((format_length + 7) & ~size_t{7});
    }
    pos += 8;  // The end-of-extensions marker: type 0, length 0.
    if (h.backing_file) {
        store_be64(p + 8, pos);
        store_be32(p + 16, static_cast<uint32_t>(name_length));
        std::copy(h.backing_file->begin(), h.backing_file->end(), p + pos);
    }
    return out;
}

}  // namespace pv::img::qcow2
