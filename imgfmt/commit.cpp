#include "imgfmt/commit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "imgfmt/lock.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/raw/raw_image.hpp"
#include "imgfmt/replace.hpp"

namespace pv::img {

namespace {

constexpr uint64_t kChunk = 4 << 20;

// Where each byte range of the merged image comes from.
enum class Source {
    Overlay,      // allocated in the overlay
    OverlayZero,  // a zero cluster in the overlay, hiding base data
    Base,         // data of the base
    Hole,         // zero in both
};

struct Segment {
    uint64_t offset;
    uint64_t length;
    Source source;
};

// The merged view's plan: the overlay's own map, with the ranges it leaves
// to its backing device resolved through the base's map.
Result<std::vector<Segment>> plan_segments(Qcow2Image& overlay, BlockDevice& base) {
    std::vector<Segment> plan;
    const auto extents = PV_TRY(overlay.map(0, overlay.size()));
    for (const auto& extent : extents) {
        if (extent.kind != ExtentKind::Backing) {
            const auto source =
                extent.kind == ExtentKind::Data ? Source::Overlay : Source::OverlayZero;
            plan.push_back({extent.offset, extent.length, source});
            continue;
        }
        const uint64_t end = extent.offset + extent.length;
        const uint64_t base_end = std::min(end, base.size());
        if (extent.offset < base_end) {
            const auto base_extents = PV_TRY(base.map(extent.offset, base_end - extent.offset));
            for (const auto& piece : base_extents)
                plan.push_back({piece.offset, piece.length,
                                piece.kind == ExtentKind::Data ? Source::Base : Source::Hole});
        }
        const uint64_t tail = std::max(extent.offset, base_end);
        if (tail < end)
            plan.push_back({tail, end - tail, Source::Hole});
    }
    return plan;
}

bool is_zero(const std::byte* data, size_t length) {
    // Compare against the first byte, then the buffer against itself shifted
    // by one: a zero first byte and equal neighbours mean all zero.
    return length == 0 || (data[0] == std::byte{0} && std::memcmp(data, data + 1, length - 1) == 0);
}

class Merger {
  public:
    Merger(Qcow2Image& overlay, BlockDevice& base, BlockDevice& target,
           const ProgressCallback& progress, uint64_t total)
        : m_overlay(overlay),
          m_base(base),
          m_target(target),
          m_progress(progress),
          m_total(total),
          m_buffer(kChunk) {}

    // Copies a segment through memory; with SKIP_ZEROES, runs of all-zero
    // clusters are left unwritten so the target keeps them as holes.
    Result<void> copy(const Segment& segment, bool skip_zeroes) {
        BlockDevice& source = segment.source == Source::Base ? m_base : m_overlay;
        const uint64_t cluster = m_overlay.cluster_size();
        for (uint64_t done = 0; done < segment.length;) {
            const uint64_t length = std::min<uint64_t>(kChunk, segment.length - done);
            const uint64_t offset = segment.offset + done;
            PV_TRY(source.read_at(std::span(m_buffer.data(), length), offset));
            PV_TRY(write_chunk(offset, length, skip_zeroes ? cluster : 0));
            done += length;
            advance(length);
        }
        return {};
    }

    void advance(uint64_t length) {
        m_done += length;
        if (m_progress)
            m_progress(m_done, m_total);
    }

    [[nodiscard]] uint64_t done() const { return m_done; }

  private:
    // Writes the buffer's non-zero runs of GRANULE-aligned pieces (all of it
    // when GRANULE is 0); the pieces follow the target's cluster boundaries.
    Result<void> write_chunk(uint64_t offset, uint64_t length, uint64_t granule) {
        if (granule == 0)
            return m_target.write_at(std::span(m_buffer.data(), length), offset);
        uint64_t run_start = 0;
        bool in_run = false;
        for (uint64_t at = 0; at < length;) {
            const uint64_t piece = std::min(granule - (offset + at) % granule, length - at);
            const bool data = !is_zero(m_buffer.data() + at, piece);
            if (data && !in_run)
                run_start = at;
            if (!data && in_run)
                PV_TRY(write_run(offset, run_start, at));
            in_run = data;
            at += piece;
        }
        if (in_run)
            PV_TRY(write_run(offset, run_start, length));
        return {};
    }

    Result<void> write_run(uint64_t offset, uint64_t begin, uint64_t end) {
        return m_target.write_at(std::span(m_buffer.data() + begin, end - begin), offset + begin);
    }

    Qcow2Image& m_overlay;
    BlockDevice& m_base;
    BlockDevice& m_target;
    const ProgressCallback& m_progress;
    uint64_t m_total;
    uint64_t m_done = 0;
    std::vector<std::byte> m_buffer;
};

uint64_t bytes_to_copy(const std::vector<Segment>& plan) {
    uint64_t total = 0;
    for (const auto& segment : plan)
        if (segment.source == Source::Overlay || segment.source == Source::Base)
            total += segment.length;
    return total;
}

// Copies base data into the raw target without passing it through user
// space; copy_file_range keeps the target sparse where we do not copy, and
// on filesystems that can (XFS, btrfs) it shares the blocks (reflink).
// Returns false, having copied nothing, where the kernel cannot do it
// (EXDEV between filesystems, EOPNOTSUPP, EINVAL): the caller then copies
// through memory.
Result<bool> copy_range_in_kernel(const RawImage& base, int target_fd, const Segment& segment,
                                  const std::string& target_path, Merger& merger) {
    loff_t in = static_cast<loff_t>(segment.offset);
    loff_t out = in;
    for (uint64_t left = segment.length; left > 0;) {
        const ssize_t copied = ::copy_file_range(base.fd(), &in, target_fd, &out,
                                                 std::min<uint64_t>(left, kChunk * 16), 0);
        if (copied < 0 && left == segment.length &&
            (errno == EXDEV || errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS))
            return false;
        if (copied < 0)
            return fail(errno_error("copy " + base.name() + " into " + target_path));
        if (copied == 0)
            return fail(make_error("copy " + base.name() + " into " + target_path,
                                   "the original ended early"));
        left -= static_cast<uint64_t>(copied);
        merger.advance(static_cast<uint64_t>(copied));
    }
    return true;
}

Result<void> write_raw_target(Qcow2Image& overlay, BlockDevice& base, const std::string& path,
                              const std::vector<Segment>& plan, const ProgressCallback& progress,
                              uint64_t& copied) {
    {
        auto created = PV_TRY(Fd::open(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
        if (::ftruncate(created.get(), static_cast<off_t>(overlay.size())) != 0)
            return fail(errno_error("size " + path));
    }
    auto target = PV_TRY(RawImage::open(path, Access::ReadWrite));
    auto* raw_base = dynamic_cast<RawImage*>(&base);
    Merger merger(overlay, base, *target, progress, bytes_to_copy(plan));
    for (const auto& segment : plan) {
        if (segment.source != Source::Base && segment.source != Source::Overlay)
            continue;
        if (segment.source == Source::Base && raw_base != nullptr) {
            const bool done =
                PV_TRY(copy_range_in_kernel(*raw_base, target->fd(), segment, path, merger));
            raw_base = done ? raw_base : nullptr;  // no second try after a refusal
            if (done)
                continue;
        }
        PV_TRY(merger.copy(segment, /*skip_zeroes=*/true));
    }
    copied = merger.done();
    return target->flush();
}

Result<void> write_qcow2_target(Qcow2Image& overlay, BlockDevice& base, const std::string& path,
                                const std::vector<Segment>& plan, const ProgressCallback& progress,
                                uint64_t& copied) {
    auto target = PV_TRY(Qcow2Image::create_standalone(path, overlay.size()));
    Merger merger(overlay, base, *target, progress, bytes_to_copy(plan));
    for (const auto& segment : plan)
        if (segment.source == Source::Base || segment.source == Source::Overlay)
            PV_TRY(merger.copy(segment, /*skip_zeroes=*/true));
    copied = merger.done();
    return target->flush();
}

Format default_target_format(Format original) {
    return original == Format::Raw ? Format::Raw : Format::Qcow2;
}

}  // namespace

Result<CommitResult> commit_overlay(const std::string& overlay_path, const CommitOptions& options) {
    auto overlay = PV_TRY(Qcow2Image::open(overlay_path, Access::ReadOnly, Backing::Allow));
    if (!overlay->backing_file() || overlay->backing() == nullptr)
        return fail(make_error("commit " + overlay_path, "it has no backing file to merge into"));
    const auto lock = PV_TRY(ImageLock::acquire(overlay->backing()->name()));
    return commit_locked(*overlay, lock, options);
}

Result<CommitResult> commit_locked(Qcow2Image& overlay, const ImageLock& lock,
                                   const CommitOptions& options) {
    if (overlay.backing() == nullptr || overlay.backing()->name() != lock.path())
        return fail(make_error("commit " + overlay.name(),
                               "its backing file is not the locked image " + lock.path()));
    CommitResult result;
    result.original = lock.path();
    const auto original_format = PV_TRY(detect_format(result.original));
    result.format = options.format.value_or(default_target_format(original_format));
    result.target = options.output.value_or(result.original);
    result.virtual_size = overlay.size();
    if (options.output && std::filesystem::exists(*options.output))
        return fail(make_error("commit to " + *options.output,
                               "the file exists; remove it or choose another --output"));
    if (!options.output && options.keep_backup) {
        result.backup = backup_path_for(result.original);
        if (std::filesystem::exists(*result.backup))
            return fail(make_error("keep a backup of " + result.original,
                                   *result.backup + " exists; move it away first"));
    }
    if (result.format == Format::Qcow)
        return fail(make_error("commit " + overlay.name(),
                               "qcow (version 1) targets are not supported; use raw or qcow2"));

    BlockDevice& base = *overlay.backing();
    const auto plan = PV_TRY(plan_segments(overlay, base));
    auto temp = PV_TRY(TempFile::next_to(result.target));
    if (result.format == Format::Raw)
        PV_TRY(write_raw_target(overlay, base, temp.path(), plan, options.progress,
                                result.bytes_copied));
    else
        PV_TRY(write_qcow2_target(overlay, base, temp.path(), plan, options.progress,
                                  result.bytes_copied));
    PV_TRY(temp.install(result.target, result.backup, result.original));
    return result;
}

}  // namespace pv::img
