#pragma once

// Internal to the FUSE export: the state the serving thread and the
// request handlers share (fuse_export.cpp, fuse_operations.cpp).

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <atomic>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>

#include "common/fd.hpp"
#include "imgfmt/block_device.hpp"
#include "patcher/sandbox/jail/fuse_export.hpp"

namespace pv::sandbox {

// Inode numbers: the root directory (FUSE_ROOT_ID) and the one file.
inline constexpr fuse_ino_t kFileInode = 2;

struct FuseExport::State {
    explicit State(img::BlockDevice& device_) : device(device_) {}

    img::BlockDevice& device;
    // Serializes every call into the device; the kernel sends requests from
    // one thread here, but the device must never see two callers anyway.
    std::mutex device_mutex;
    // Whether writes happened since the last device flush.
    bool dirty = false;

    std::string mountpoint;
    std::string file_name;
    std::string file_path;
    timespec started{};

    fuse_session* session = nullptr;
    bool mounted = false;
    // Written to stop the serving thread.
    Fd wake;
    std::thread thread;
    std::atomic<uint64_t> io_errors{0};
};

// The request handlers of the export.
[[nodiscard]] const fuse_lowlevel_ops& export_operations();

}  // namespace pv::sandbox
