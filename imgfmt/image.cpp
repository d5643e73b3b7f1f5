#include "imgfmt/image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "imgfmt/probe.hpp"
#include "imgfmt/qcow/qcow_header.hpp"
#include "imgfmt/qcow2/header.hpp"
#include "imgfmt/raw/raw_image.hpp"

namespace pv::img {

std::string_view format_name(Format format) {
    switch (format) {
        case Format::Raw:
            return "raw";
        case Format::Qcow:
            return "qcow";
        case Format::Qcow2:
            return "qcow2";
    }
    return "unknown";
}

Result<Format> parse_format(std::string_view name) {
    for (const Format format : {Format::Raw, Format::Qcow, Format::Qcow2}) {
        if (name == format_name(format))
            return format;
    }
    return fail(make_error("image format '" + std::string(name) + "'",
                           "unknown format (expected raw, qcow or qcow2)"));
}

namespace detail {

namespace {

// Magic as QEMU probes it (block/qcow.c, block/qcow2.c): "QFI\xfb" with
// version 1 is qcow; version 2 or more is qcow2 (and a version we do not
// know is then refused by the qcow2 header check rather than handed to a
// guest as raw bytes); anything else, version 0 included, is raw.
Format format_of(const std::array<uint8_t, 8>& magic, size_t length) {
    if (length < 8 || magic[0] != 'Q' || magic[1] != 'F' || magic[2] != 'I' || magic[3] != 0xfb)
        return Format::Raw;
    const uint32_t version = (uint32_t{magic[4]} << 24) | (uint32_t{magic[5]} << 16) |
                             (uint32_t{magic[6]} << 8) | magic[7];
    if (version == 1)
        return Format::Qcow;
    return version >= 2 ? Format::Qcow2 : Format::Raw;
}

}  // namespace

Result<Probe> probe(const std::string& path) {
    Probe result;
    result.fd = PV_TRY(Fd::open(path, O_RDONLY));
    struct stat st {};
    if (::fstat(result.fd.get(), &st) != 0)
        return fail(errno_error("stat " + path));
    result.file_size = PV_TRY(device_size(result.fd.get(), path));
    result.allocated_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    if (result.file_size == 0)
        return fail(make_error(path, "the file is empty, not a disk image"));
    std::array<uint8_t, 8> magic{};
    const size_t length = result.file_size < magic.size() ? result.file_size : magic.size();
    PV_TRY(pread_all(result.fd.get(), magic.data(), length, 0, "read the header of " + path));
    result.format = format_of(magic, length);
    return result;
}

namespace {

void fill_qcow(ImageInfo& info, const qcow::Header& header) {
    info.virtual_size = header.size;
    info.cluster_size = static_cast<uint32_t>(header.cluster_size());
    info.version = qcow::kVersion;
    info.encrypted = header.crypt_method != 0;
    info.backing_file = header.backing_file;
}

void fill_qcow2(ImageInfo& info, const qcow2::Header& header) {
    info.virtual_size = header.size;
    info.cluster_size = static_cast<uint32_t>(header.cluster_size());
    info.version = header.version;
    info.encrypted = header.crypt_method != 0;
    info.backing_file = header.backing_file;
    info.backing_format = header.backing_format;
}

}  // namespace

Result<Inspection> inspect(const std::string& path, Probe& probe, Format format) {
    Inspection result;
    ImageInfo& info = result.info;
    info.path = path;
    info.format = format;
    info.file_size = probe.file_size;
    info.allocated_bytes = probe.allocated_bytes;
    switch (format) {
        case Format::Raw:
            info.virtual_size = probe.file_size;
            break;
        case Format::Qcow:
            fill_qcow(info, PV_TRY(qcow::read_header(probe.fd.get(), path)));
            break;
        case Format::Qcow2: {
            const qcow2::Header header = PV_TRY(qcow2::read_header(probe.fd.get(), path));
            fill_qcow2(info, header);
            result.incompatible_features = header.incompatible_features;
            break;
        }
    }
    return result;
}

}  // namespace detail

Result<Format> detect_format(const std::string& path) {
    const detail::Probe probe = PV_TRY(detail::probe(path));
    return probe.format;
}

Result<ImageInfo> inspect_image(const std::string& path) {
    detail::Probe probe = PV_TRY(detail::probe(path));
    detail::Inspection inspection = PV_TRY(detail::inspect(path, probe, probe.format));
    return std::move(inspection.info);
}

Result<ImageInfo> inspect_image(const std::string& path, Format format) {
    detail::Probe probe = PV_TRY(detail::probe(path));
    detail::Inspection inspection = PV_TRY(detail::inspect(path, probe, format));
    return std::move(inspection.info);
}

}  // namespace pv::img
