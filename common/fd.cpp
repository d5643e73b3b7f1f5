#include "common/fd.hpp"

#include <climits>

#include <algorithm>

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

namespace {

// Drops the first DONE bytes of IOV: whole buffers off the front, then part
// of the next.
std::span<iovec> skip_transferred(std::span<iovec> iov, size_t done) {
    while (!iov.empty() && done >= iov.front().iov_len) {
        done -= iov.front().iov_len;
        iov = iov.subspan(1);
    }
    if (done > 0) {
        iov.front().iov_base = static_cast<uint8_t*>(iov.front().iov_base) + done;
        iov.front().iov_len -= done;
    }
    return iov;
}

template <class Transfer>
int transfer_all(std::span<iovec> iov, uint64_t offset, Transfer transfer) {
    iov = skip_transferred(iov, 0);  // skips empty buffers
    while (!iov.empty()) {
        const int count = static_cast<int>(std::min<size_t>(iov.size(), IOV_MAX));
        const ssize_t done = transfer(iov.data(), count, static_cast<off_t>(offset));
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (done == 0)
            return ENODATA;
        iov = skip_transferred(iov, static_cast<size_t>(done));
        offset += static_cast<uint64_t>(done);
    }
    return 0;
}

}  // namespace

int preadv_all(int fd, std::span<iovec> iov, uint64_t offset) {
    return transfer_all(iov, offset, [fd](const iovec* vector, int count, off_t at) {
        return ::preadv(fd, vector, count, at);
    });
}

int pwritev_all(int fd, std::span<iovec> iov, uint64_t offset) {
    return transfer_all(iov, offset, [fd](const iovec* vector, int count, off_t at) {
        return ::pwritev(fd, vector, count, at);
    });
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
