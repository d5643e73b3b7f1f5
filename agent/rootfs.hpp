#pragma once

// Finds the guest's root filesystem on the sandbox disk and mounts it: a
// filesystem on the whole disk, or the MBR/GPT partition that holds
// /etc/os-release (ext4, xfs or btrfs).

#include <string>

#include "common/error.hpp"

namespace pv::agent {

class MountedRoot {
  public:
    // Tries the whole disk, then each partition, and keeps the first that
    // mounts and holds an os-release file. `mountpoint` must exist.
    [[nodiscard]] static Result<MountedRoot> find_and_mount(const std::string& disk,
                                                            const std::string& mountpoint);

    MountedRoot(MountedRoot&& other) noexcept;
    MountedRoot& operator=(MountedRoot&&) = delete;
    MountedRoot(const MountedRoot&) = delete;
    ~MountedRoot();

    // Syncs and unmounts; a partition's loop device goes with the mount
    // (LO_FLAGS_AUTOCLEAR). Safe to call twice.
    [[nodiscard]] Result<void> unmount();

    [[nodiscard]] const std::string& path() const { return m_path; }
    // "/dev/vda1", "/dev/loop1 (offset 1048576 of /dev/loop0)".
    [[nodiscard]] const std::string& device() const { return m_device; }
    [[nodiscard]] const std::string& filesystem() const { return m_filesystem; }

  private:
    MountedRoot(std::string path, std::string device, std::string filesystem)
        : m_path(std::move(path)),
          m_device(std::move(device)),
          m_filesystem(std::move(filesystem)) {}

    std::string m_path;
    std::string m_device;
    std::string m_filesystem;
    bool m_mounted = true;
};

}  // namespace pv::agent
