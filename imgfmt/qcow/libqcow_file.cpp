#include "imgfmt/qcow/libqcow_file.hpp"

#include <libqcow.h>

namespace pv::img::qcow {

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

    // OPERATION names the image; the detail is libqcow's own backtrace,
    // innermost step first, one line per step joined with "; ".
    [[nodiscard]] Error to_error(std::string operation) const {
        std::string detail = "libqcow failed";
        if (m_error != nullptr) {
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

// One libqcow_file_t, closed and freed exactly once.
class LibqcowFile::Handle {
  public:
    static Result<std::unique_ptr<Handle>> open(const std::string& path) {
        LibqcowError error;
        libqcow_file_t* file = nullptr;
        if (libqcow_file_initialize(&file, error.out()) != 1)
            return fail(error.to_error("open " + path + " with libqcow"));
        auto handle = std::unique_ptr<Handle>(new Handle(file));
        if (libqcow_file_open(file, path.c_str(), LIBQCOW_OPEN_READ, error.out()) != 1)
            return fail(error.to_error("open " + path + " with libqcow"));
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

LibqcowFile::LibqcowFile(std::unique_ptr<Handle> parent, std::unique_ptr<Handle> file,
                         std::string path)
    : m_parent(std::move(parent)), m_file(std::move(file)), m_path(std::move(path)) {}

LibqcowFile::~LibqcowFile() {
    m_file.reset();
    m_parent.reset();
}

Result<std::unique_ptr<LibqcowFile>> LibqcowFile::open(const std::string& path) {
    std::unique_ptr<Handle> file = PV_TRY(Handle::open(path));
    LibqcowError error;
    size_t name_size = 0;
    const int has_backing =
        libqcow_file_get_utf8_backing_filename_size(file->get(), &name_size, error.out());
    if (has_backing < 0)
        return fail(error.to_error("open " + path + " with libqcow"));
    std::unique_ptr<Handle> parent;
    if (has_backing == 1) {
        parent = PV_TRY(Handle::open(path));
        if (libqcow_file_set_parent_file(file->get(), parent->get(), error.out()) != 1)
            return fail(error.to_error("open " + path + " with libqcow"));
    }
    return std::unique_ptr<LibqcowFile>(new LibqcowFile(std::move(parent), std::move(file), path));
}

Result<void> LibqcowFile::read_at(std::span<std::byte> buffer, uint64_t offset) {
    size_t done = 0;
    while (done < buffer.size()) {
        LibqcowError error;
        const uint64_t position = offset + done;
        const std::string what = "read " + m_path + " at offset " + std::to_string(position);
        // Returns the number of bytes read, possibly fewer than asked.
        const ssize_t count = libqcow_file_read_buffer_at_offset(
            m_file->get(), buffer.data() + done, buffer.size() - done,
            static_cast<off64_t>(position), error.out());
        if (count < 0)
            return fail(error.to_error(what));
        if (count == 0)
            return fail(make_error(what, "libqcow returned no data before the end of the disk"));
        done += static_cast<size_t>(count);
    }
    return {};
}

}  // namespace pv::img::qcow
