#include "imgfmt/qcow/qcow_image.hpp"

#include <libqcow.h>

#include <algorithm>
#include <cerrno>

namespace pv::img {

namespace {

// Owns a libqcow_error_t so that every exit path frees it.
class LibqcowError {
  public:
    LibqcowError() = default;
    LibqcowError(const LibqcowError&) = delete;
    LibqcowError& operator=(const LibqcowError&) = delete;
    ~LibqcowError() {
        if (m_error != nullptr)
            libqcow_error_free(&m_error);
    }
    libqcow_error_t** out() { return &m_error; }

    // OPERATION names the image; the detail is libqcow's own message.
    [[nodiscard]] Error to_error(std::string operation) const {
        std::string detail = "libqcow failed";
        if (m_error != nullptr) {
            // The backtrace names every step that failed, innermost first.
            char text[2048] = {};
            if (libqcow_error_backtrace_sprint(m_error, text, sizeof(text)) > 0)
                detail = text;
        }
        while (!detail.empty() && (detail.back() == '\n' || detail.back() == '.'))
            detail.pop_back();
        for (size_t at = detail.find(".\n"); at != std::string::npos; at = detail.find(".\n"))
            detail.replace(at, 2, "; ");
        return make_error(std::move(operation), std::move(detail));
    }

  private:
    libqcow_error_t* m_error = nullptr;
};

}  // namespace

// One open libqcow file; closed and freed exactly once.
class QcowImage::Handle {
  public:
    static Result<std::unique_ptr<Handle>> open(const std::string& path) {
        LibqcowError error;
        libqcow_file_t* file = nullptr;
        if (libqcow_file_initialize(&file, error.out()) != 1)
            return fail(error.to_error("open " + path));
        auto handle = std::unique_ptr<Handle>(new Handle(file));
        if (libqcow_file_open(file, path.c_str(), LIBQCOW_OPEN_READ, error.out()) != 1)
            return fail(error.to_error("open " + path));
        handle->m_open = true;
        return handle;
    }

    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() {
        if (m_open)
            libqcow_file_close(m_file, nullptr);
        libqcow_file_free(&m_file, nullptr);
    }

    [[nodiscard]] libqcow_file_t* get() const { return m_file; }

  private:
    explicit Handle(libqcow_file_t* file) : m_file(file) {}
    libqcow_file_t* m_file;
    bool m_open = false;
};

QcowImage::QcowImage(std::unique_ptr<Handle> parent, std::unique_ptr<Handle> handle,
                     qcow::ClusterMap map, std::unique_ptr<BlockDevice> backing, std::string path,
                     uint64_t size)
    : m_parent(std::move(parent)),
      m_handle(std::move(handle)),
      m_map(std::move(map)),
      m_backing(std::move(backing)),
      m_path(std::move(path)),
      m_size(size) {}

QcowImage::~QcowImage() = default;

Result<std::unique_ptr<QcowImage>> QcowImage::open(const std::string& path, Format format,
                                                   std::unique_ptr<BlockDevice> backing) {
    qcow::ClusterMap map = PV_TRY(qcow::ClusterMap::open(path, format));
    std::unique_ptr<Handle> handle = PV_TRY(Handle::open(path));
    LibqcowError error;
    // libqcow 20201213 refuses every read of an image that names a backing
    // file until a parent file is set, even of clusters stored in the image.
    // It is only ever asked for stored clusters here (the cluster map sends
    // the others to BACKING), so the parent is a second handle on the same
    // file that libqcow never has to read from.
    std::unique_ptr<Handle> parent;
    size_t name_size = 0;
    const int has_backing =
        libqcow_file_get_utf8_backing_filename_size(handle->get(), &name_size, error.out());
    if (has_backing < 0)
        return fail(error.to_error("open " + path));
    if (has_backing == 1) {
        parent = PV_TRY(Handle::open(path));
        if (libqcow_file_set_parent_file(handle->get(), parent->get(), error.out()) != 1)
            return fail(error.to_error("open " + path));
    }
    size64_t media_size = 0;
    if (libqcow_file_get_media_size(handle->get(), &media_size, error.out()) != 1)
        return fail(error.to_error("open " + path));
    return std::unique_ptr<QcowImage>(new QcowImage(std::move(parent), std::move(handle),
                                                    std::move(map), std::move(backing), path,
                                                    static_cast<uint64_t>(media_size)));
}

Result<void> QcowImage::read_stored(std::span<std::byte> buffer, uint64_t offset) {
    size_t done = 0;
    while (done < buffer.size()) {
        LibqcowError error;
        const uint64_t position = offset + done;
        // Returns the number of bytes read, possibly fewer than asked.
        const ssize_t count = libqcow_file_read_buffer_at_offset(
            m_handle->get(), buffer.data() + done, buffer.size() - done,
            static_cast<off64_t>(position), error.out());
        if (count < 0)
            return fail(
                error.to_error("read " + m_path + " at offset " + std::to_string(position)));
        if (count == 0)
            return fail(make_error("read " + m_path + " at offset " + std::to_string(position),
                                   "libqcow returned no data before the end of the disk"));
        done += static_cast<size_t>(count);
    }
    return {};
}

Result<void> QcowImage::read_backing(std::span<std::byte> buffer, uint64_t offset) {
    // A backing file shorter than this image reads as zeroes past its end,
    // as in QEMU.
    const uint64_t available =
        m_backing == nullptr || offset >= m_backing->size() ? 0 : m_backing->size() - offset;
    const size_t from_backing = static_cast<size_t>(std::min<uint64_t>(available, buffer.size()));
    if (from_backing > 0)
        PV_TRY(m_backing->read_at(buffer.first(from_backing), offset));
    std::fill(buffer.begin() + static_cast<std::ptrdiff_t>(from_backing), buffer.end(),
              std::byte{0});
    return {};
}

Result<void> QcowImage::read_at(std::span<std::byte> buffer, uint64_t offset) {
    PV_TRY(check_range("read", offset, buffer.size()));
    const std::lock_guard lock(m_mutex);
    const uint64_t cluster_size = m_map.cluster_size();
    size_t done = 0;
    while (done < buffer.size()) {
        const uint64_t position = offset + done;
        const qcow::ClusterState state = PV_TRY(m_map.lookup(position));
        // Extend the run over following clusters in the same state, so that
        // libqcow and the backing device see few, large reads.
        uint64_t run_end = (position / cluster_size + 1) * cluster_size;
        while (run_end < offset + buffer.size() && PV_TRY(m_map.lookup(run_end)) == state)
            run_end += cluster_size;
        const size_t length =
            static_cast<size_t>(std::min<uint64_t>(run_end - position, buffer.size() - done));
        const std::span<std::byte> part = buffer.subspan(done, length);
        switch (state) {
            case qcow::ClusterState::Stored:
                PV_TRY(read_stored(part, position));
                break;
            case qcow::ClusterState::Zero:
                std::fill(part.begin(), part.end(), std::byte{0});
                break;
            case qcow::ClusterState::Unallocated:
                PV_TRY(read_backing(part, position));
                break;
        }
        done += length;
    }
    return {};
}

namespace {

void append_extent(std::vector<Extent>& extents, uint64_t offset, uint64_t length,
                   ExtentKind kind) {
    if (length == 0)
        return;
    if (!extents.empty() && extents.back().kind == kind &&
        extents.back().offset + extents.back().length == offset) {
        extents.back().length += length;
        return;
    }
    extents.push_back(Extent{offset, length, kind});
}

}  // namespace

Result<void> QcowImage::map_backing(std::vector<Extent>& extents, uint64_t offset,
                                    uint64_t length) {
    const uint64_t available =
        m_backing == nullptr || offset >= m_backing->size() ? 0 : m_backing->size() - offset;
    const uint64_t from_backing = std::min(available, length);
    if (from_backing > 0) {
        for (const Extent& extent : PV_TRY(m_backing->map(offset, from_backing)))
            append_extent(extents, extent.offset, extent.length,
                          extent.kind == ExtentKind::Zero ? ExtentKind::Zero : ExtentKind::Data);
    }
    append_extent(extents, offset + from_backing, length - from_backing, ExtentKind::Zero);
    return {};
}

Result<std::vector<Extent>> QcowImage::map(uint64_t offset, uint64_t length) {
    PV_TRY(check_range("map", offset, length));
    const std::lock_guard lock(m_mutex);
    std::vector<Extent> extents;
    const uint64_t cluster_size = m_map.cluster_size();
    const uint64_t end = offset + length;
    for (uint64_t position = offset; position < end;) {
        const uint64_t next = std::min(end, (position / cluster_size + 1) * cluster_size);
        switch (PV_TRY(m_map.lookup(position))) {
            case qcow::ClusterState::Stored:
                append_extent(extents, position, next - position, ExtentKind::Data);
                break;
            case qcow::ClusterState::Zero:
                append_extent(extents, position, next - position, ExtentKind::Zero);
                break;
            case qcow::ClusterState::Unallocated:
                PV_TRY(map_backing(extents, position, next - position));
                break;
        }
        position = next;
    }
    return extents;
}

Result<void> QcowImage::write_at(std::span<const std::byte>, uint64_t) {
    return fail(Error{"write " + m_path, "qcow images are opened read-only", EROFS});
}

Result<void> QcowImage::flush() {
    return {};
}

Result<void> QcowImage::write_zeroes(uint64_t, uint64_t) {
    return fail(Error{"write zeroes to " + m_path, "qcow images are opened read-only", EROFS});
}

Result<void> QcowImage::discard(uint64_t, uint64_t) {
    return fail(Error{"discard on " + m_path, "qcow images are opened read-only", EROFS});
}

}  // namespace pv::img
