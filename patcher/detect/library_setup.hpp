#pragma once

// One-time set-up of the C/C++ package libraries, shared by the files of
// pv_detect. Both libraries keep process-wide configuration, so each is set
// up exactly once (std::call_once), whichever thread gets there first.

#include <mutex>
#include <string>

#include "common/error.hpp"

namespace pv::patcher::detail {

// libapt-pkg: pkgInitConfig, which sets up the configuration (among other
// things the decompressors) that reading a .deb's control.tar.* uses.
[[nodiscard]] Result<void> ensure_apt_ready();

// libapt-pkg's configuration (_config) and packaging system (_system) are
// process-wide; whoever changes them (a repository resolution, which points
// them at its own files) holds this for as long as it relies on them.
[[nodiscard]] std::mutex& apt_state_mutex();

// librpm: rpmReadConfigFiles, which header reading and rpmverParse rely on.
[[nodiscard]] Result<void> ensure_rpm_ready();

// Collects and clears the calling thread's pending libapt-pkg messages
// (libapt-pkg keeps them per thread), joined with "; ".
[[nodiscard]] std::string take_apt_errors();

}  // namespace pv::patcher::detail
