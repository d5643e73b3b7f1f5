#pragma once

// Exports a BlockDevice as one regular file of fixed size in a private FUSE
// mount (libfuse3 low-level API), so a loop device can be attached to it.
// The jail uses this to give pv-agent the job's copy-on-write overlay as a
// block device without a second writer on the overlay file.
//
// One thread serves the FUSE session; calls into the device are serialized
// by a mutex (the qcow2 overlay is not thread-safe). A device error becomes
// EIO for the kernel and is logged to stderr. The mount and the session are
// our own: we mount(2) with an fd of /dev/fuse we opened, and libfuse only
// speaks the protocol, so unmounting never goes through fusermount.

#include <cstdint>
#include <memory>
#include <string>

#include "common/error.hpp"
#include "imgfmt/block_device.hpp"

namespace pv::sandbox {

class FuseExport {
  public:
    // Mounts at MOUNTPOINT (an existing empty directory) a filesystem whose
    // only entry is FILE_NAME, reading and writing DEVICE. SOURCE names the
    // mount in /proc/mounts (type "fuse.patchvisor"). DEVICE must outlive
    // the export.
    [[nodiscard]] static Result<FuseExport> start(img::BlockDevice& device,
                                                  const std::string& mountpoint,
                                                  const std::string& source,
                                                  const std::string& file_name = "disk");

    FuseExport(FuseExport&& other) noexcept;
    FuseExport& operator=(FuseExport&& other) noexcept;
    FuseExport(const FuseExport&) = delete;
    FuseExport& operator=(const FuseExport&) = delete;
    // Stops the export as stop() does, logging a failure.
    ~FuseExport();

    // MOUNTPOINT/FILE_NAME.
    [[nodiscard]] const std::string& file_path() const;
    [[nodiscard]] const std::string& mountpoint() const;
    // Requests the device answered with an error so far.
    [[nodiscard]] uint64_t io_errors() const;

    // Unmounts, stops the serving thread and destroys the session. If the
    // file is still in use (a loop device still attached) the mount is
    // detached lazily and the connection aborted, and that is reported as an
    // error. Safe to call twice.
    [[nodiscard]] Result<void> stop();

    struct State;  // defined in fuse_export.cpp

  private:
    explicit FuseExport(std::unique_ptr<State> state);
    std::unique_ptr<State> m_state;
};

}  // namespace pv::sandbox
