#pragma once

// Move-only owner of a file descriptor.

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

#include "common/error.hpp"

namespace pv {

class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : m_fd(fd) {}
    Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            m_fd = std::exchange(other.m_fd, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    [[nodiscard]] int get() const { return m_fd; }
    [[nodiscard]] bool valid() const { return m_fd >= 0; }
    [[nodiscard]] int release() { return std::exchange(m_fd, -1); }
    void reset();

    // open(2) with O_CLOEXEC added; the error names the path.
    [[nodiscard]] static Result<Fd> open(const std::string& path, int flags, int mode = 0644);

  private:
    int m_fd = -1;
};

// Full-length positional I/O that retries short transfers and EINTR.
// `what` names the file in the error ("read /a/b.img").
[[nodiscard]] Result<void> pread_all(int fd, void* buffer, size_t length, uint64_t offset,
                                     const std::string& what);
[[nodiscard]] Result<void> pwrite_all(int fd, const void* buffer, size_t length, uint64_t offset,
                                      const std::string& what);

// The same for many buffers as one preadv(2)/pwritev(2) (IOV_MAX at a time),
// for hot paths: IOV is advanced in place, and nothing is built on success.
// Returns 0, or the errno of the failure (ENODATA: the file ended first).
[[nodiscard]] int preadv_all(int fd, std::span<iovec> iov, uint64_t offset);
[[nodiscard]] int pwritev_all(int fd, std::span<iovec> iov, uint64_t offset);

}  // namespace pv
