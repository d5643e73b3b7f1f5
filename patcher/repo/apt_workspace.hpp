#pragma once

// A private apt root for one resolution: the guest's dpkg status, its
// preferences and keyrings, the repository's sources.list, lists and a
// place for the verified .debs, in one directory under the job's work
// directory that goes away with this object. configure_apt() points
// libapt-pkg's process-wide configuration at it, under a lock.

#include <mutex>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::patcher::repo {

class AptWorkspace {
  public:
    // Creates WORK_DIR/repo-XXXXXX and its sub-directories. The tree is
    // readable by others (0755), so apt's download methods could run as
    // their sandbox user, though they run as root (configure_apt()).
    [[nodiscard]] static Result<AptWorkspace> create(const std::string& work_dir);
    AptWorkspace(AptWorkspace&& other) noexcept : m_root(std::move(other.m_root)) {
        other.m_root.clear();
    }
    AptWorkspace& operator=(AptWorkspace&&) = delete;
    ~AptWorkspace();

    [[nodiscard]] const std::string& root() const { return m_root; }
    [[nodiscard]] std::string etc() const { return m_root + "/etc"; }
    [[nodiscard]] std::string status_file() const { return m_root + "/status"; }
    [[nodiscard]] std::string lists() const { return m_root + "/lists"; }
    [[nodiscard]] std::string trusted_parts() const { return etc() + "/trusted.gpg.d"; }
    [[nodiscard]] std::string preference_parts() const { return etc() + "/preferences.d"; }
    [[nodiscard]] std::string debs() const { return m_root + "/debs"; }

  private:
    explicit AptWorkspace(std::string root) : m_root(std::move(root)) {}
    std::string m_root;
};

// Writes DATA to PATH (created 0644, replaced if present).
[[nodiscard]] Result<void> write_file(const std::string& path, const std::string& data);

struct AptSettings {
    std::string native_architecture;                 // the guest's dpkg architecture
    std::vector<std::string> foreign_architectures;  // /var/lib/dpkg/arch of the guest
    bool ignore_valid_until = false;
};

// libapt-pkg set up for WORKSPACE while this lives: the global lock held,
// every directory and the options that decide trust set explicitly (the
// host's apt.conf is never read, library_setup.cpp), and the dpkg
// packaging system initialised on the workspace's status file.
class AptConfigured {
  public:
    AptConfigured(AptConfigured&&) = default;
    ~AptConfigured();

  private:
    friend Result<AptConfigured> configure_apt(const AptWorkspace&, const AptSettings&);
    explicit AptConfigured(std::unique_lock<std::mutex> lock) : m_lock(std::move(lock)) {}
    std::unique_lock<std::mutex> m_lock;
};

[[nodiscard]] Result<AptConfigured> configure_apt(const AptWorkspace& workspace,
                                                  const AptSettings& settings);

// The thread's pending libapt-pkg errors and warnings, one "E: ..." or
// "W: ..." line each (empty when there are none); the stack is cleared,
// notices are dropped.
[[nodiscard]] std::string take_apt_problems();

// take_apt_problems() for a call that failed: never empty.
[[nodiscard]] std::string apt_failure_reason();

}  // namespace pv::patcher::repo
