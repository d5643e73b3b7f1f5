#include <cerrno>

#include "imgfmt/image.hpp"
#include "imgfmt/probe.hpp"
#include "imgfmt/qcow/qcow_image.hpp"
#include "imgfmt/raw/raw_image.hpp"

namespace pv::img {

namespace {

// qcow2 spec, "incompatible_features": bit 0 (dirty) only says refcounts may
// be stale, which does not matter to a reader. Corrupt images, external data
// files, non-zlib compression, extended L2 entries and unknown bits are
// things QcowImage does not handle, so reading on would return wrong data.
constexpr uint64_t kDirtyBit = 1;

std::string describe_features(uint64_t bits) {
    static const char* const names[] = {"dirty", "corrupt", "external data file",
                                        "compression type", "extended L2 entries"};
    std::string text;
    for (unsigned bit = 0; bit < 64; ++bit) {
        if ((bits & (uint64_t{1} << bit)) == 0)
            continue;
        if (!text.empty())
            text += ", ";
        text += bit < 5 ? names[bit] : "unknown bit " + std::to_string(bit);
    }
    return text;
}

Result<void> check_readable(const detail::Inspection& inspection) {
    const ImageInfo& info = inspection.info;
    if (info.encrypted)
        return fail(Error{info.path, "encrypted qcow images are not supported", ENOTSUP});
    const uint64_t unsupported = inspection.incompatible_features & ~kDirtyBit;
    if (unsupported != 0)
        return fail(Error{
            info.path, "unsupported qcow2 feature(s): " + describe_features(unsupported), ENOTSUP});
    return {};
}

// QEMU resolves a relative backing file name against the directory of the
// image that names it (bdrv_get_full_backing_filename).
std::string resolve_backing(const std::string& image_path, const std::string& name) {
    if (!name.empty() && name.front() == '/')
        return name;
    const size_t slash = image_path.rfind('/');
    if (slash == std::string::npos)
        return name;
    return image_path.substr(0, slash + 1) + name;
}

// The format a backing file is read as: the one the header records (the
// writer's word beats the magic, so a raw guest disk that happens to look
// like qcow2 is never probed into one), else its magic.
Result<Format> backing_format_of(const ImageInfo& child, const std::string& backing_path,
                                 const detail::Probe& probe) {
    if (!child.backing_format)
        return probe.format;
    auto named = parse_format(*child.backing_format);
    if (!named)
        return fail(make_error(child.path, "backing file " + backing_path + " has format '" +
                                               *child.backing_format +
                                               "', which is not supported"));
    return *named;
}

Result<std::unique_ptr<BlockDevice>> open_inspected(const detail::Inspection& inspection,
                                                    Access access, Backing backing, int depth);

// Opens the backing file CHILD names, under the same rules as CHILD itself:
// a name inside an image is followed only because the user allowed it, so
// the whole chain is allowed, to kMaxBackingDepth levels (a loop ends there).
Result<std::unique_ptr<BlockDevice>> open_backing(const ImageInfo& child, int depth) {
    const std::string& name = *child.backing_file;
    if (name.empty() || name.starts_with("json:"))
        return fail(make_error(child.path, "backing file name '" + name + "' is not a file path"));
    if (depth > kMaxBackingDepth)
        return fail(make_error(child.path, "backing chain is deeper than " +
                                               std::to_string(kMaxBackingDepth) + " images"));
    const std::string path = resolve_backing(child.path, name);
    detail::Probe probe = PV_TRY(detail::probe(path).map_error([&](Error error) {
        return with_context(std::move(error), "backing file of " + child.path);
    }));
    const Format format = PV_TRY(backing_format_of(child, path, probe));
    const detail::Inspection inspection = PV_TRY(detail::inspect(path, probe, format));
    return open_inspected(inspection, Access::ReadOnly, Backing::Allow, depth);
}

Result<std::unique_ptr<BlockDevice>> open_inspected(const detail::Inspection& inspection,
                                                    Access access, Backing backing, int depth) {
    const ImageInfo& info = inspection.info;
    if (info.format == Format::Raw)
        return PV_TRY(RawImage::open(info.path, access));
    if (access == Access::ReadWrite)
        return fail(Error{
            info.path,
            std::string(format_name(info.format)) + " images can only be opened read-only here",
            EROFS});
    PV_TRY(check_readable(inspection));
    std::unique_ptr<BlockDevice> backing_device;
    if (info.backing_file) {
        if (backing == Backing::Refuse)
            return fail(make_error(info.path, "has a backing file (" + *info.backing_file +
                                                  "); pass --allow-backing to follow it"));
        // libqcow 20201213, our first reader, misread the L2 tables of a qcow
        // version 1 image that names a backing file; QcowImage has not been
        // checked against QEMU on such chains, so they stay refused.
        if (info.format == Format::Qcow)
            return fail(Error{
                info.path, "qcow version 1 images with a backing file are not supported", ENOTSUP});
        backing_device = PV_TRY(open_backing(info, depth + 1));
    }
    return PV_TRY(QcowImage::open(info.path, info.format, std::move(backing_device)));
}

}  // namespace

Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path, Access access,
                                                Backing backing) {
    detail::Probe probe = PV_TRY(detail::probe(path));
    const detail::Inspection inspection = PV_TRY(detail::inspect(path, probe, probe.format));
    return open_inspected(inspection, access, backing, 0);
}

Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path, Format format,
                                                Access access, Backing backing) {
    detail::Probe probe = PV_TRY(detail::probe(path));
    const detail::Inspection inspection = PV_TRY(detail::inspect(path, probe, format));
    return open_inspected(inspection, access, backing, 0);
}

}  // namespace pv::img
