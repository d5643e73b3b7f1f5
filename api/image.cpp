// patchvisor::Image (include/patchvisor/image.hpp) over imgfmt: the public
// handle owns one imgfmt BlockDevice and the locks that protect it.

#include <filesystem>
#include <memory>
#include <optional>

#include "api/convert.hpp"
#include "imgfmt/commit.hpp"
#include "imgfmt/lock.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"

namespace patchvisor {

struct Image::State {
    std::string path;
    ImageFormat format = ImageFormat::Raw;
    // The lock on PATH, and for an overlay made by create_overlay the lock
    // its base held. Declared before DEVICE so that the device is closed
    // before another process may open the files.
    std::optional<pv::img::ImageLock> base_lock;
    std::optional<pv::img::ImageLock> lock;
    std::unique_ptr<pv::img::BlockDevice> device;
    // DEVICE when it is imgfmt's own qcow2 code, which commit needs.
    pv::img::Qcow2Image* qcow2 = nullptr;
    // A qcow2 file whose backing image was opened with it.
    bool overlay = false;
};

namespace {

using pv::api::to_internal;
using pv::api::to_public;

pv::Result<std::unique_ptr<Image::State>> open_state(const std::string& path,
                                                     const OpenOptions& options) {
    auto state = std::make_unique<Image::State>();
    state->path = path;
    // The lock first, so nothing is read from a file another writer holds.
    if (options.locking == Locking::Exclusive)
        state->lock = PV_TRY(pv::img::ImageLock::acquire(path));
    const auto format =
        options.format ? to_internal(*options.format) : PV_TRY(pv::img::detect_format(path));
    state->format = to_public(format);
    const auto access = to_internal(options.access);
    const auto backing = to_internal(options.backing);
    if (format == pv::img::Format::Qcow2 && access == pv::Access::ReadWrite) {
        auto qcow2 = PV_TRY(pv::img::Qcow2Image::open(path, access, backing));
        state->qcow2 = qcow2.get();
        state->overlay = qcow2->backing() != nullptr;
        state->device = std::move(qcow2);
        return state;
    }
    state->device = PV_TRY(pv::img::open_image(path, format, access, backing));
    // Opened at all with a backing file named means it was followed.
    if (format == pv::img::Format::Qcow2)
        state->overlay = PV_TRY(pv::img::inspect_image(path, format)).backing_file.has_value();
    return state;
}

pv::Result<std::unique_ptr<Image::State>> overlay_state(const std::string& path,
                                                        std::unique_ptr<Image::State> base) {
    auto state = std::make_unique<Image::State>();
    state->path = path;
    state->format = ImageFormat::Qcow2;
    const auto base_path = std::filesystem::absolute(base->path).lexically_normal().string();
    auto qcow2 = PV_TRY(pv::img::Qcow2Image::create_overlay(path, std::move(base->device),
                                                            base_path, to_internal(base->format)));
    // The header and tables reach the disk now: the file is an image even
    // if the caller never writes. A file we could not finish is removed.
    auto finished = qcow2->flush().and_then([&]() -> pv::Result<void> {
        if (base->lock)
            state->lock = PV_TRY(pv::img::ImageLock::acquire(path));
        return {};
    });
    if (!finished) {
        qcow2.reset();
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
        return fail(std::move(finished).error());
    }
    state->base_lock = std::move(base->lock);
    state->qcow2 = qcow2.get();
    state->overlay = true;
    state->device = std::move(qcow2);
    return state;
}

pv::img::CommitOptions commit_options(const CommitOptions& options) {
    pv::img::CommitOptions internal;
    if (options.format)
        internal.format = to_internal(*options.format);
    internal.output = options.output;
    internal.keep_backup = options.keep_backup;
    internal.progress = options.progress;
    return internal;
}

CommitResult commit_result(const pv::img::CommitResult& result) {
    return CommitResult{result.original,     result.target,       to_public(result.format),
                        result.virtual_size, result.bytes_copied, result.backup};
}

pv::Result<pv::img::CommitResult> commit_state(std::unique_ptr<Image::State> state,
                                               const CommitOptions& options) {
    if (!state->overlay)
        return fail(pv::make_error("commit " + state->path,
                                   "not an overlay (a qcow2 image opened with its backing file; "
                                   "open it with Backing::Allow)"));
    const auto internal = commit_options(options);
    if (state->qcow2 == nullptr) {
        // Read through libqcow: closed here and merged by path, which opens
        // it with the qcow2 code commit reads from.
        const std::string path = state->path;
        state.reset();
        return pv::img::commit_overlay(path, internal);
    }
    if (!state->qcow2->read_only())
        PV_TRY(state->qcow2->flush());
    const std::string& base = state->qcow2->backing()->name();
    if (!state->base_lock || state->base_lock->path() != base)
        state->base_lock = PV_TRY(pv::img::ImageLock::acquire(base));
    return pv::img::commit_locked(*state->qcow2, *state->base_lock, internal);
}

pv::Result<void> check_usable(const std::unique_ptr<Image::State>& state) {
    if (!state)
        return fail(pv::make_error("use image", "the Image was moved from or consumed"));
    return {};
}

}  // namespace

std::string_view format_name(ImageFormat format) {
    return pv::img::format_name(to_internal(format));
}

Result<ImageFormat> parse_format(std::string_view name) {
    return to_public(
        pv::img::parse_format(name).map([](pv::img::Format format) { return to_public(format); }));
}

Result<ImageInfo> inspect_image(const std::string& path, std::optional<ImageFormat> format) {
    auto info =
        format ? pv::img::inspect_image(path, to_internal(*format)) : pv::img::inspect_image(path);
    return to_public(std::move(info).map([](const pv::img::ImageInfo& found) {
        return ImageInfo{found.path,          to_public(found.format), found.virtual_size,
                         found.file_size,     found.allocated_bytes,   found.cluster_size,
                         found.version,       found.encrypted,         found.backing_file,
                         found.backing_format};
    }));
}

Image::Image(std::unique_ptr<State> state) : m_state(std::move(state)) {}
Image::Image(Image&& other) noexcept = default;
Image& Image::operator=(Image&& other) noexcept = default;
Image::~Image() = default;

Result<Image> Image::open(const std::string& path, const OpenOptions& options) {
    return to_public(open_state(path, options).map([](std::unique_ptr<State> state) {
        return Image(std::move(state));
    }));
}

Result<Image> Image::create_overlay(const std::string& path, Image base) {
    if (auto usable = check_usable(base.m_state); !usable)
        return tl::unexpected(to_public(std::move(usable).error()));
    return to_public(
        overlay_state(path, std::move(base.m_state)).map([](std::unique_ptr<State> state) {
            return Image(std::move(state));
        }));
}

const std::string& Image::path() const {
    return m_state->path;
}

ImageFormat Image::format() const {
    return m_state->format;
}

uint64_t Image::size() const {
    return m_state->device->size();
}

bool Image::read_only() const {
    return m_state->device->read_only();
}

bool Image::is_overlay() const {
    return m_state->overlay;
}

Result<void> Image::read(uint64_t offset, std::span<std::byte> buffer) {
    return to_public(m_state->device->read_at(buffer, offset));
}

Result<void> Image::write(uint64_t offset, std::span<const std::byte> data) {
    return to_public(m_state->device->write_at(data, offset));
}

Result<void> Image::write_zeroes(uint64_t offset, uint64_t length) {
    return to_public(m_state->device->write_zeroes(offset, length));
}

Result<void> Image::discard(uint64_t offset, uint64_t length) {
    return to_public(m_state->device->discard(offset, length));
}

Result<void> Image::flush() {
    return to_public(m_state->device->flush());
}

Result<CommitResult> Image::commit(const CommitOptions& options) && {
    if (auto usable = check_usable(m_state); !usable)
        return tl::unexpected(to_public(std::move(usable).error()));
    return to_public(commit_state(std::move(m_state), options).map(commit_result));
}

}  // namespace patchvisor
