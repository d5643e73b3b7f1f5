#pragma once

// The lock a write-intent operation holds on the original image while it
// runs. It is an exclusive open-file-description (OFD) lock over the whole
// file, so it conflicts with QEMU's own byte-range locks (QEMU locks bytes
// 100+ and 200+ of every image it has open): an image held by a running VM
// or qemu-io is refused, and a VM cannot open an image we are patching.

#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace pv::img {

class ImageLock {
  public:
    // Fails with "PATH: image is in use by another process" (code EBUSY)
    // when any other open file description holds a lock on PATH.
    [[nodiscard]] static Result<ImageLock> acquire(const std::string& path);

    ImageLock(ImageLock&&) = default;
    ImageLock& operator=(ImageLock&&) = default;
    // Released when the object (and so its file description) goes away.
    ~ImageLock() = default;

    [[nodiscard]] const std::string& path() const { return m_path; }

  private:
    ImageLock(Fd fd, std::string path) : m_fd(std::move(fd)), m_path(std::move(path)) {}
    Fd m_fd;
    std::string m_path;
};

}  // namespace pv::img
