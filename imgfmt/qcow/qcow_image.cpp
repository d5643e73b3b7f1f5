#include "imgfmt/qcow/qcow_image.hpp"

#include <libqcow.h>

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
            char text[1024] = {};
            if (libqcow_error_sprint(m_error, text, sizeof(text)) > 0)
                detail = text;
        }
        while (!detail.empty() && (detail.back() == '\n' || detail.back() == '.'))
            detail.pop_back();
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

QcowImage::QcowImage(std::vector<std::unique_ptr<Handle>> handles, std::string path, uint64_t size)
    : m_handles(std::move(handles)), m_path(std::move(path)), m_size(size) {}

QcowImage::~QcowImage() {
    // A child refers to its parent: close the top image first.
    for (auto& handle : m_handles)
        handle.reset();
}

Result<std::unique_ptr<QcowImage>> QcowImage::open(const std::vector<std::string>& chain) {
    if (chain.empty())
        return fail(make_error("open qcow image", "no image given"));
    std::vector<std::unique_ptr<Handle>> handles;
    for (const std::string& path : chain)
        handles.push_back(PV_TRY(Handle::open(path)));
    LibqcowError error;
    // Link each layer to the next one (libqcow_file_set_parent_file): reads of
    // clusters a layer does not hold then fall through to its parent.
    for (size_t i = 0; i + 1 < handles.size(); ++i) {
        if (libqcow_file_set_parent_file(handles[i]->get(), handles[i + 1]->get(), error.out()) !=
            1)
            return fail(error.to_error("open " + chain[i] + " with backing file " + chain[i + 1]));
    }
    size64_t media_size = 0;
    if (libqcow_file_get_media_size(handles.front()->get(), &media_size, error.out()) != 1)
        return fail(error.to_error("open " + chain.front()));
    return std::unique_ptr<QcowImage>(
        new QcowImage(std::move(handles), chain.front(), static_cast<uint64_t>(media_size)));
}

Result<void> QcowImage::read_at(std::span<std::byte> buffer, uint64_t offset) {
    PV_TRY(check_range("read", offset, buffer.size()));
    const std::lock_guard lock(m_mutex);
    size_t done = 0;
    while (done < buffer.size()) {
        LibqcowError error;
        const uint64_t position = offset + done;
        // Returns the number of bytes read, possibly fewer than asked.
        const ssize_t count = libqcow_file_read_buffer_at_offset(
            m_handles.front()->get(), buffer.data() + done, buffer.size() - done,
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
