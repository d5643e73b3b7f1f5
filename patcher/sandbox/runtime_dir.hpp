#pragma once

// The per-sandbox runtime directory, /run/patchvisor/<pid>-<n>/.
//
// Cleanup story for crashes of patchvisor itself: every host resource a
// sandbox creates is named after this directory, so a later
// `patchvisor gc` can find what a dead patchvisor left behind:
//   <dir>/export/        the FUSE mountpoint (fsname "patchvisor", visible
//                        in /proc/mounts); after a crash it is a dead mount
//                        ("Transport endpoint is not connected"): umount -l.
//   <dir>/export/disk    the exported overlay, the backing file of the loop
//                        device (/sys/block/loopN/loop/backing_file names
//                        it): LOOP_CLR_FD. Loop devices are attached with
//                        LO_FLAGS_AUTOCLEAR, so most detach by themselves
//                        when the dead process's descriptors close.
//   <dir>/agent.sock     the socket the agent connects to.
// A directory is stale when <pid> is not a running patchvisor (check
// /proc/<pid>/exe, as pids are reused). The agent itself dies with
// patchvisor (PR_SET_PDEATHSIG) and takes its pid namespace with it.
// Directories are removed entry by entry, never recursively, so a mount
// still present under one is never descended into.

#include <string>

#include "common/error.hpp"

namespace pv::sandbox {

class RuntimeDir {
  public:
    // Creates ROOT (0700) if needed and a fresh ROOT/<pid>-<n>/ below it.
    [[nodiscard]] static Result<RuntimeDir> create(const std::string& root);

    RuntimeDir(RuntimeDir&& other) noexcept;
    RuntimeDir& operator=(RuntimeDir&&) = delete;
    RuntimeDir(const RuntimeDir&) = delete;
    RuntimeDir& operator=(const RuntimeDir&) = delete;
    ~RuntimeDir();

    [[nodiscard]] const std::string& path() const { return m_path; }
    // "<pid>-<n>", unique within this host while the process lives.
    [[nodiscard]] const std::string& tag() const { return m_tag; }
    [[nodiscard]] std::string export_dir() const { return m_path + "/export"; }
    [[nodiscard]] std::string socket_path() const { return m_path + "/agent.sock"; }

    // Removes the known entries and the directory; fails (and keeps what
    // is still in use) if, e.g., the export is still mounted.
    [[nodiscard]] Result<void> remove();

  private:
    RuntimeDir(std::string path, std::string tag)
        : m_path(std::move(path)), m_tag(std::move(tag)) {}

    std::string m_path;
    std::string m_tag;
};

}  // namespace pv::sandbox
