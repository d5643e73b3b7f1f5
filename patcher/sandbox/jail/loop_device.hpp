#pragma once

// A loop device attached to a file (loop(4)), owned RAII-style: attached
// with LO_FLAGS_AUTOCLEAR (so it detaches by itself when the last user
// closes it, even if patchvisor dies) and LO_FLAGS_PARTSCAN (so MBR/GPT
// partitions appear as /dev/loopNpM), buffered I/O. Detached in the
// destructor.

#include <chrono>
#include <string>
#include <vector>

#include "common/access.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"

namespace pv::sandbox {

class LoopDevice {
  public:
    // Attaches a free loop device to BACKING_PATH.
    [[nodiscard]] static Result<LoopDevice> attach(const std::string& backing_path, Access access);

    LoopDevice(LoopDevice&& other) noexcept;
    LoopDevice& operator=(LoopDevice&& other) noexcept;
    LoopDevice(const LoopDevice&) = delete;
    LoopDevice& operator=(const LoopDevice&) = delete;
    ~LoopDevice();

    // "/dev/loop3".
    [[nodiscard]] const std::string& path() const { return m_path; }
    [[nodiscard]] int number() const { return m_number; }

    // The partition nodes (/dev/loopNpM), once both the sysfs entry and the
    // /dev node exist. Partitions the kernel's own scan missed are
    // registered from the table first (kernel_partitions.hpp). There is no udev here to wait
    // for, so this polls until the count stops changing or TIMEOUT passes;
    // an unpartitioned disk gives an empty list after a short settle time.
    [[nodiscard]] Result<std::vector<std::string>> wait_for_partitions(
        std::chrono::milliseconds timeout) const;

    // Asks the kernel to detach (deferred while others still hold the
    // device open, e.g. a filesystem a dying sandbox mounted), closes our
    // descriptor, and waits up to TIMEOUT until the device has really let go
    // of its backing file. Safe to call twice.
    [[nodiscard]] Result<void> detach(std::chrono::milliseconds timeout);

  private:
    LoopDevice(Fd fd, int number, std::string backing_path);

    Fd m_fd;
    int m_number = -1;
    std::string m_path;
    std::string m_backing_path;
};

// The backing file of loop device NUMBER (sysfs), "" when detached.
[[nodiscard]] std::string loop_backing_file(int number);

}  // namespace pv::sandbox
