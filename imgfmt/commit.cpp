#include "imgfmt/commit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <vector>

#include "imgfmt/lock.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/raw/raw_image.hpp"
#include "imgfmt/replace.hpp"

namespace pv::img {

namespace {

constexpr uint64_t kChunk = 4 << 20;

// What the merged image holds beyond zeroes, and where to copy it from. The
// target starts out all zeroes (a sparse raw file, an empty qcow2), so zero
// clusters and holes need no segment at all.
enum class Source {
    Overlay,  // stored in the overlay file at `host`
    Base,     // data of the base at the same offset
};

struct Segment {
    uint64_t offset;
    uint64_t length;
    Source source;
    uint64_t host = 0;
};

// The plan: the overlay's stored data in the order it lies in the overlay
// file (so it is read sequentially), then the base data the overlay leaves
// visible, in disk order.
Result<std::vector<Segment>> plan_segments(Qcow2Image& overlay, BlockDevice& base) {
    std::vector<Segment> plan;
    for (const auto& stored : PV_TRY(overlay.data_extents(0, overlay.size())))
        plan.push_back({stored.offset, stored.length, Source::Overlay, stored.host_offset});
    std::sort(plan.begin(), plan.end(),
              [](const Segment& a, const Segment& b) { return a.host < b.host; });
    for (const auto& extent : PV_TRY(overlay.map(0, overlay.size()))) {
        const uint64_t end = std::min(extent.offset + extent.length, base.size());
        if (extent.kind != ExtentKind::Backing || extent.offset >= end)
            continue;
        for (const auto& piece : PV_TRY(base.map(extent.offset, end - extent.offset)))
            if (piece.kind == ExtentKind::Data)
                plan.push_back({piece.offset, piece.length, Source::Base});
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
        const uint64_t cluster = m_overlay.cluster_size();
        for (uint64_t done = 0; done < segment.length;) {
            const uint64_t length = std::min<uint64_t>(kChunk, segment.length - done);
            const uint64_t offset = segment.offset + done;
            if (segment.source == Source::Base)
                PV_TRY(m_base.read_at(std::span(m_buffer.data(), length), offset));
            else
                PV_TRY(pread_all(m_overlay.file_descriptor(), m_buffer.data(), length,
                                 segment.host + done, "read " + m_overlay.name()));
            PV_TRY(write_chunk(offset, length, skip_zeroes ? cluster : 0));
            done += length;
            advance(length);
        }
        return {};
    }

    // Called by both copy lanes of a raw commit, hence the lock.
    void advance(uint64_t length) {
        std::lock_guard lock(m_progress_mutex);
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
    std::mutex m_progress_mutex;
    std::vector<std::byte> m_buffer;
};

uint64_t bytes_to_copy(const std::vector<Segment>& plan) {
    uint64_t total = 0;
    for (const auto& segment : plan)
        total += segment.length;
    return total;
}

// Copies a segment into the raw target without passing it through user
// space; copy_file_range keeps the target sparse where we do not copy, and
// on filesystems that can (XFS, btrfs) it shares the blocks (reflink).
// Returns false, having copied nothing, where the kernel cannot do it
// (EXDEV between filesystems, EOPNOTSUPP, EINVAL): the caller then copies
// through memory.
Result<bool> copy_in_kernel(int source_fd, uint64_t source_offset, const std::string& source,
                            const RawImage& target, const Segment& segment, Merger& merger) {
    loff_t in = static_cast<loff_t>(source_offset);
    loff_t out = static_cast<loff_t>(segment.offset);
    for (uint64_t left = segment.length; left > 0;) {
        const ssize_t copied = ::copy_file_range(source_fd, &in, target.fd(), &out,
                                                 std::min<uint64_t>(left, kChunk * 16), 0);
        if (copied < 0 && left == segment.length &&
            (errno == EXDEV || errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS))
            return false;
        if (copied < 0)
            return fail(errno_error("copy " + source + " into " + target.name()));
        if (copied == 0)
            return fail(
                make_error("copy " + source + " into " + target.name(), "the file ended early"));
        // Start writing back what was just copied, so the disk writes while
        // we read on and the final fdatasync has little left to wait for.
        ::sync_file_range(target.fd(), out - copied, copied, SYNC_FILE_RANGE_WRITE);
        left -= static_cast<uint64_t>(copied);
        merger.advance(static_cast<uint64_t>(copied));
    }
    return true;
}

// Copies SEGMENTS from SOURCE_FD in the kernel (overlay segments from their
// host offsets, base segments from their own); returns the segments left
// for copying through memory after the kernel refused.
Result<std::vector<Segment>> copy_lane(std::vector<Segment> segments, int source_fd,
                                       const std::string& source, const RawImage& target,
                                       Merger& merger) {
    for (size_t i = 0; i < segments.size(); ++i) {
        const auto& segment = segments[i];
        const uint64_t from = segment.source == Source::Overlay ? segment.host : segment.offset;
        if (!PV_TRY(copy_in_kernel(source_fd, from, source, target, segment, merger)))
            return std::vector<Segment>(segments.begin() + static_cast<ptrdiff_t>(i),
                                        segments.end());
    }
    return std::vector<Segment>{};
}

// Raw targets: overlay data and base data go in two lanes at once, each
// reading its own file sequentially, so the disk sees both streams.
Result<void> write_raw_target(Qcow2Image& overlay, BlockDevice& base, const std::string& path,
                              const std::vector<Segment>& plan, const ProgressCallback& progress,
                              uint64_t& copied) {
    {
        auto created = PV_TRY(Fd::open(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
        if (::ftruncate(created.get(), static_cast<off_t>(overlay.size())) != 0)
            return fail(errno_error("size " + path));
    }
    auto target = PV_TRY(RawImage::open(path, Access::ReadWrite));
    Merger merger(overlay, base, *target, progress, bytes_to_copy(plan));
    std::vector<Segment> overlay_segments;
    std::vector<Segment> base_segments;
    for (const auto& segment : plan)
        (segment.source == Source::Overlay ? overlay_segments : base_segments).push_back(segment);

    std::vector<Segment> leftover = base_segments;
    std::future<Result<std::vector<Segment>>> base_lane;
    if (const auto* raw_base = dynamic_cast<RawImage*>(&base)) {
        leftover.clear();
        base_lane = std::async(std::launch::async, copy_lane, std::move(base_segments),
                               raw_base->fd(), base.name(), std::cref(*target), std::ref(merger));
    }
    auto overlay_left = copy_lane(std::move(overlay_segments), overlay.file_descriptor(),
                                  overlay.name(), *target, merger);
    if (base_lane.valid()) {
        auto base_left = base_lane.get();
        if (!base_left)
            return fail(base_left.error());
        leftover.insert(leftover.end(), base_left->begin(), base_left->end());
    }
    if (!overlay_left)
        return fail(overlay_left.error());
    leftover.insert(leftover.end(), overlay_left->begin(), overlay_left->end());
    for (const auto& segment : leftover)
        PV_TRY(merger.copy(segment, /*skip_zeroes=*/true));
    copied = merger.done();
    return target->flush();
}

Result<void> write_qcow2_target(Qcow2Image& overlay, BlockDevice& base, const std::string& path,
                                const std::vector<Segment>& plan, const ProgressCallback& progress,
                                uint64_t& copied) {
    auto target = PV_TRY(Qcow2Image::create_standalone(path, overlay.size()));
    Merger merger(overlay, base, *target, progress, bytes_to_copy(plan));
    for (const auto& segment : plan)
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
    if (options.before_install)
        PV_TRY(options.before_install());
    PV_TRY(temp.install(result.target, result.backup, result.original));
    return result;
}

}  // namespace pv::img
