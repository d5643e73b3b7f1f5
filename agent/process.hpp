#pragma once

// Runs the guest's own tools (dpkg, rpm) in a chroot of the guest root, with
// /proc, /sys and /dev available and their output streamed line by line.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace pv::agent {

enum class LogStream { Stdout, Stderr };

using LineCallback = std::function<void(LogStream, std::string_view)>;

// Runs argv (argv[0] is looked up in the guest's sbin/bin directories) in a
// chroot of `root` with stdin from /dev/null and a non-interactive
// environment (DEBIAN_FRONTEND=noninteractive, LC_ALL=C). Returns the exit
// status, or 128 + signal number when the command was killed.
[[nodiscard]] Result<int> run_in_chroot(const std::string& root,
                                        const std::vector<std::string>& argv,
                                        const LineCallback& on_line);

// Mounts that give a chroot /proc (fresh), /sys (bound read-only) and a
// minimal /dev (null, zero, full, random, urandom, tty bound from the
// sandbox's); undone in reverse order on destruction.
class ChrootMounts {
  public:
    [[nodiscard]] static Result<ChrootMounts> create(const std::string& root);
    ChrootMounts(ChrootMounts&& other) noexcept : m_targets(std::move(other.m_targets)) {
        other.m_targets.clear();
    }
    ChrootMounts& operator=(ChrootMounts&&) = delete;
    ChrootMounts(const ChrootMounts&) = delete;
    ~ChrootMounts();

  private:
    ChrootMounts() = default;
    [[nodiscard]] Result<void> populate_dev(const std::string& dev);
    // Binds SOURCE on TARGET read-only (nosuid, nodev, noexec).
    [[nodiscard]] Result<void> bind_read_only(const std::string& source, const std::string& target);
    std::vector<std::string> m_targets;
};

}  // namespace pv::agent
