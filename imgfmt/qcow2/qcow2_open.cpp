// Creating and opening qcow2 files (qcow2 spec, "Header", "Host cluster
// management").

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "imgfmt/qcow2/endian.hpp"
#include "imgfmt/qcow2/limits.hpp"
#include "imgfmt/qcow2/state.hpp"
#include "imgfmt/raw/raw_image.hpp"

namespace pv::img {
namespace {

using qcow2::Geometry;
using qcow2::Header;

uint64_t ceil_div(uint64_t value, uint64_t divisor) {
    return (value + divisor - 1) / divisor;
}

// Sizes the refcount table for the largest file this image can become, so
// it never has to move (we allocate only at the end and never free): every
// data cluster, every L2 table, the L1 table and the refcount blocks, plus
// a margin.
uint64_t refcount_table_clusters_for(const Geometry& g, uint64_t virtual_size, uint64_t fixed) {
    const uint64_t data = ceil_div(virtual_size, g.cluster_size);
    const uint64_t l2_tables = ceil_div(data, g.l2_entries());
    uint64_t table_clusters = 1;
    for (int round = 0; round < 8; ++round) {
        uint64_t total = fixed + data + l2_tables + table_clusters;
        total += ceil_div(total, g.refcounts_per_block) + 1;
        total += total / 8 + 64;
        const uint64_t blocks = ceil_div(total, g.refcounts_per_block);
        table_clusters = std::max<uint64_t>(1, ceil_div(blocks * 8, g.cluster_size));
    }
    return table_clusters;
}

// Writes a new, empty qcow2 v3 file: header cluster, refcount table,
// refcount block 0 and the L1 table. The header goes last, so a crash
// during creation leaves a file that is not a qcow2 image at all rather
// than a broken one.
Result<void> write_new_file(int fd, const std::string& path, Header header) {
    const Geometry g = Geometry::for_bits(header.cluster_bits);
    const uint64_t l1_clusters =
        std::max<uint64_t>(1, ceil_div(uint64_t{header.l1_size} * 8, g.cluster_size));
    const uint64_t rt_clusters = refcount_table_clusters_for(g, header.size, 2 + l1_clusters);
    if (rt_clusters * g.cluster_size > qcow2::kMaxRefcountTableBytes)
        return fail(make_error(path, "virtual size too large for this cluster size"));
    const uint64_t block_cluster = 1 + rt_clusters;
    const uint64_t used = block_cluster + 1 + l1_clusters;
    if (used > g.refcounts_per_block)
        return fail(make_error(path, "virtual size too large for this cluster size"));
    header.refcount_table_offset = g.cluster_size;
    header.refcount_table_clusters = static_cast<uint32_t>(rt_clusters);
    header.l1_table_offset = (block_cluster + 1) * g.cluster_size;
    std::vector<uint8_t> block(g.cluster_size, 0);
    for (uint64_t c = 0; c < used; ++c)
        qcow2::store_be16(&block[c * 2], 1);
    PV_TRY(pwrite_all(fd, block.data(), block.size(), block_cluster * g.cluster_size,
                      "write " + path));
    uint8_t entry[8];
    qcow2::store_be64(entry, block_cluster * g.cluster_size);
    PV_TRY(pwrite_all(fd, entry, sizeof entry, header.refcount_table_offset, "write " + path));
    if (::ftruncate(fd, static_cast<off_t>(used * g.cluster_size)) != 0)
        return fail(errno_error("truncate " + path));
    const std::vector<uint8_t> bytes = PV_TRY(qcow2::serialize_header(header));
    PV_TRY(pwrite_all(fd, bytes.data(), bytes.size(), 0, "write " + path));
    if (::fdatasync(fd) != 0)
        return fail(errno_error("fdatasync " + path));
    return {};
}

Result<void> create_file(const std::string& path, Header header) {
    if (header.cluster_bits < qcow2::kMinClusterBits ||
        header.cluster_bits > qcow2::kMaxClusterBits)
        return fail(make_error(path, "cluster_bits " + std::to_string(header.cluster_bits) +
                                         " is out of range (9..21)"));
    if (header.size > qcow2::kMaxVirtualSize)
        return fail(make_error(path, "virtual size is too large"));
    header.l1_size = static_cast<uint32_t>(qcow2::l1_entries_for(header.size, header.cluster_bits));
    Fd fd = PV_TRY(Fd::open(path, O_RDWR | O_CREAT | O_EXCL, 0644));
    auto written = write_new_file(fd.get(), path, header);
    if (!written) {
        ::unlink(path.c_str());
        return fail(written.error());
    }
    return {};
}

Result<void> check_supported(const Header& h, Access access, const std::string& path) {
    auto unsupported = [&](const std::string& what) {
        return fail(make_error(path, what + " not supported"));
    };
    if (h.crypt_method != 0)
        return unsupported("encrypted qcow2 images are");
    if (h.incompatible_features & qcow2::kFeatureExternalData)
        return unsupported("external data files are");
    if (h.incompatible_features & qcow2::kFeatureExtendedL2)
        return unsupported("extended L2 entries are");
    if (access == Access::ReadOnly)
        return {};
    if (h.incompatible_features & (qcow2::kFeatureDirty | qcow2::kFeatureCorrupt))
        return unsupported(
            "writing an image marked dirty or corrupt (run qemu-img check -r all) is");
    if (h.nb_snapshots != 0)
        return unsupported("writing an image with internal snapshots is");
    if (h.refcount_order != 4)
        return unsupported("writing refcounts of " + std::to_string(1u << h.refcount_order) +
                           " bits is");
    return {};
}

// Opens the backing file named in the header: relative names are relative
// to the overlay's directory; a recorded "raw" format is honoured even if
// the file starts with a qcow2 magic (no format probing of backing files).
Result<std::unique_ptr<BlockDevice>> open_backing(const std::string& path, const Header& header) {
    std::filesystem::path name(*header.backing_file);
    if (name.is_relative())
        name = std::filesystem::path(path).parent_path() / name;
    if (header.backing_format && *header.backing_format == "raw")
        return Result<std::unique_ptr<BlockDevice>>(PV_TRY(RawImage::open(name, Access::ReadOnly)));
    auto opened = open_image(name, Access::ReadOnly, Backing::Refuse);
    if (!opened)
        return fail(with_context(opened.error(), "open backing file of " + path));
    return opened;
}

}  // namespace

namespace qcow2 {

Result<std::unique_ptr<Qcow2Image::State>> open_state(const std::string& path, Access access,
                                                      std::unique_ptr<BlockDevice> backing) {
    auto state = std::make_unique<Qcow2Image::State>();
    state->path = path;
    state->access = access;
    state->fd = PV_TRY(Fd::open(path, access == Access::ReadWrite ? O_RDWR : O_RDONLY));
    state->header = PV_TRY(read_header(state->fd.get(), path));
    PV_TRY(check_supported(state->header, access, path));
    struct stat st {};
    if (::fstat(state->fd.get(), &st) != 0)
        return fail(errno_error("stat " + path));
    state->meta =
        PV_TRY(Metadata::load(state->fd.get(), path, state->header,
                              static_cast<uint64_t>(st.st_size), access == Access::ReadWrite));
    if (access == Access::ReadWrite && state->header.autoclear_features != 0) {
        // qcow2 spec: a writer that does not understand an autoclear bit
        // must clear it before modifying the image.
        const uint8_t zeroes[8] = {};
        PV_TRY(pwrite_all(state->fd.get(), zeroes, sizeof zeroes, 88, "write " + path));
        if (::fdatasync(state->fd.get()) != 0)
            return fail(errno_error("fdatasync " + path));
        state->header.autoclear_features = 0;
    }
    state->backing = std::move(backing);
    if (access == Access::ReadWrite)
        open_direct(*state);
    state->head_fill.resize(state->header.cluster_size());
    state->tail_fill.resize(state->header.cluster_size());
    return state;
}

}  // namespace qcow2

Result<std::unique_ptr<Qcow2Image>> Qcow2Image::create_overlay(const std::string& path,
                                                               std::unique_ptr<BlockDevice> backing,
                                                               const std::string& backing_path,
                                                               Format backing_format,
                                                               Qcow2CreateOptions options) {
    if (!backing)
        return fail(make_error(path, "an overlay needs a backing device"));
    Header header;
    header.cluster_bits = options.cluster_bits;
    header.size = backing->size();
    header.backing_file = std::filesystem::absolute(backing_path).lexically_normal().string();
    header.backing_format = std::string(format_name(backing_format));
    PV_TRY(create_file(path, header));
    auto state = PV_TRY(qcow2::open_state(path, Access::ReadWrite, std::move(backing)));
    return std::unique_ptr<Qcow2Image>(new Qcow2Image(std::move(state)));
}

Result<std::unique_ptr<Qcow2Image>> Qcow2Image::create_standalone(const std::string& path,
                                                                  uint64_t virtual_size,
                                                                  Qcow2CreateOptions options) {
    Header header;
    header.cluster_bits = options.cluster_bits;
    header.size = virtual_size;
    PV_TRY(create_file(path, header));
    auto state = PV_TRY(qcow2::open_state(path, Access::ReadWrite, nullptr));
    return std::unique_ptr<Qcow2Image>(new Qcow2Image(std::move(state)));
}

Result<std::unique_ptr<Qcow2Image>> Qcow2Image::open(const std::string& path, Access access,
                                                     Backing backing) {
    std::unique_ptr<BlockDevice> backing_device;
    {
        Fd fd = PV_TRY(Fd::open(path, O_RDONLY));
        const Header header = PV_TRY(qcow2::read_header(fd.get(), path));
        if (header.backing_file) {
            if (backing == Backing::Refuse)
                return fail(make_error(path, "has a backing file (" + *header.backing_file +
                                                 "); pass --allow-backing to follow it"));
            backing_device = PV_TRY(open_backing(path, header));
        }
    }
    auto state = PV_TRY(qcow2::open_state(path, access, std::move(backing_device)));
    return std::unique_ptr<Qcow2Image>(new Qcow2Image(std::move(state)));
}

}  // namespace pv::img
