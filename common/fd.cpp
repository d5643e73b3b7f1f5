#include "common/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>

namespace pv {

void Fd::reset() {
    if (m_fd >= 0)
        ::close(m_fd);
    m_fd = -1;
}

Result<Fd> Fd::open(const std::string& path, int flags, int mode) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0)
        return fail(errno_error("open " + path));
    return Fd(fd);
}

Result<void> pread_all(int fd, void* buffer, size_t length, uint64_t offset,
                       const std::string& what) {
    auto* bytes = static_cast<uint8_t*>(buffer);
    while (length > 0) {
        ssize_t done = ::pread(fd, bytes, length, static_cast<off_t>(offset));
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return fail(errno_error(what + " at offset " + std::to_string(offset)));
        }
        if (done == 0)
            return fail(make_error(what + " at offset " + std::to_string(offset),
                                   "unexpected end of file"));
        bytes += done;
        length -= static_cast<size_t>(done);
        offset += static_cast<uint64_t>(done);
    }
    return {};
}

Result<void> pwrite_all(int fd, const void* buffer, size_t length, uint64_t offset,
                        const std::string& what) {
    const auto* bytes = static_cast<const uint8_t*>(buffer);
    while (length > 0) {
        ssize_t done = ::pwrite(fd, bytes, length, static_cast<off_t>(offset));
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return fail(errno_error(what + " at offset " + std::to_string(offset)));
        }
        bytes += done;
        length -= static_cast<size_t>(done);
        offset += static_cast<uint64_t>(done);
    }
    return {};
}

}  // namespace pv
