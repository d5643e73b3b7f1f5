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
// things libqcow does not handle, so reading on would return wrong data.
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

Result<detail::Inspection> inspect_backing(const ImageInfo& child, int depth) {
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
    return detail::inspect(path, probe, format);
}

// The qcow/qcow2 chain from the top image down, every layer checked; libqcow
// can only stack qcow/qcow2 files (libqcow_file_set_parent_file).
Result<std::vector<std::string>> backing_chain(const detail::Inspection& top, Backing backing) {
    std::vector<std::string> chain{top.info.path};
    if (top.info.backing_file && backing == Backing::Refuse)
        return fail(make_error(top.info.path, "has a backing file (" + *top.info.backing_file +
                                                  "); pass --allow-backing to follow it"));
    ImageInfo current = top.info;
    for (int depth = 1; current.backing_file; ++depth) {
        detail::Inspection layer = PV_TRY(inspect_backing(current, depth));
        PV_TRY(check_readable(layer));
        if (layer.info.format == Format::Raw)
            return fail(make_error(current.path,
                                   "backing file " + layer.info.path +
                                       " is a raw image; only qcow and qcow2 backing files can be "
                                       "followed when reading through libqcow"));
        chain.push_back(layer.info.path);
        current = std::move(layer.info);
    }
    return chain;
}

Result<std::unique_ptr<BlockDevice>> open_inspected(const detail::Inspection& inspection,
                                                    Access access, Backing backing) {
    const ImageInfo& info = inspection.info;
    if (info.format == Format::Raw)
        return PV_TRY(RawImage::open(info.path, access));
    if (access == Access::ReadWrite)
        return fail(Error{
            info.path,
            std::string(format_name(info.format)) + " images can only be opened read-only here",
            EROFS});
    PV_TRY(check_readable(inspection));
    const std::vector<std::string> chain = PV_TRY(backing_chain(inspection, backing));
    return PV_TRY(QcowImage::open(chain));
}

}  // namespace

Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path, Access access,
                                                Backing backing) {
    detail::Probe probe = PV_TRY(detail::probe(path));
    const detail::Inspection inspection = PV_TRY(detail::inspect(path, probe, probe.format));
    return open_inspected(inspection, access, backing);
}

Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path, Format format,
                                                Access access, Backing backing) {
    detail::Probe probe = PV_TRY(detail::probe(path));
    const detail::Inspection inspection = PV_TRY(detail::inspect(path, probe, format));
    return open_inspected(inspection, access, backing);
}

}  // namespace pv::img
