#pragma once

// dpkg's database as the host reads it: /var/lib/dpkg/status, split into
// paragraphs by libapt-pkg's deb822 scanner (pkgTagSection), and checked
// more strictly than that scanner does, because dpkg itself refuses what is
// malformed and the host must not believe a file dpkg would not read.

#include <cstddef>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "guestfs/filesystem.hpp"
#include "guestfs/package_database.hpp"

namespace pv::guestfs {

inline constexpr const char* kDpkgStatusPath = "/var/lib/dpkg/status";
// dpkg's journal: records written during a run and folded into the status
// file when the run ends cleanly.
inline constexpr const char* kDpkgUpdatesPath = "/var/lib/dpkg/updates";
// A large server's status file is a few MiB.
inline constexpr size_t kMaxStatusBytes = 128u << 20;

// Every paragraph of TEXT (a status file). Errors, with the paragraph's
// byte offset: a line that is neither "Field: value" nor a continuation, a
// field twice in one paragraph, a paragraph without Package or Status, a
// Status that is not "want flag state" in dpkg's words, a listed
// package without Version, a Package/Architecture/Version/Status value
// that is not printable ASCII or is over kMaxFieldBytes, the same package and
// architecture twice, more than kMaxPackages paragraphs. Packages dpkg
// lists as not-installed are left out.
[[nodiscard]] Result<std::vector<InstalledPackage>> parse_dpkg_status(std::string_view text);

// Reads and parses the status file of FILESYSTEM. A journal record left in
// /var/lib/dpkg/updates (dpkg stopped before folding it in, or something
// else put it there) is an error: dpkg would apply it before anything else,
// so the status file alone does not say what is installed.
[[nodiscard]] Result<std::vector<InstalledPackage>> read_dpkg_database(GuestFilesystem& filesystem);

}  // namespace pv::guestfs
