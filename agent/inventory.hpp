#pragma once

// What is installed in the guest: os-release and the package database.
// The parsers are pure functions over bytes read from the guest filesystem,
// which is hostile input, so they are unit-tested and fuzzable on their own.

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "proto/agent.pb.h"

namespace pv::agent {

struct InstalledPackage {
    std::string name;
    std::string version;
    std::string architecture;
    std::string status;

    bool operator==(const InstalledPackage&) const = default;
};

// Files larger than this are refused rather than read into memory; a real
// dpkg status file of a large server is a few MiB.
inline constexpr size_t kMaxDatabaseFileSize = 256 * 1024 * 1024;

// KEY=value lines of os-release(5); values may be quoted and escaped.
// Malformed lines are skipped, as systemd does.
[[nodiscard]] std::map<std::string, std::string> parse_os_release(std::string_view text);

// Paragraphs of /var/lib/dpkg/status (deb822). Returns the packages whose
// state is neither not-installed nor config-files. Paragraphs without a
// Package or Version field are skipped; the parser never fails on content.
[[nodiscard]] std::vector<InstalledPackage> parse_dpkg_status(std::string_view text);

// Lines "name\tepoch\tversion-release\tarch" printed by the rpm query that
// inspect() runs; an epoch of "(none)" or "0" is left out of the version.
[[nodiscard]] std::vector<InstalledPackage> parse_rpm_query(std::string_view text);

// The rpm query format that parse_rpm_query() reads.
inline constexpr const char* kRpmQueryFormat =
    "%{NAME}\\t%{EPOCH}\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\n";

// Reads os-release and the package database of the guest mounted at `root`.
// RPM databases are read by running the guest's own rpm in a chroot.
[[nodiscard]] Result<wire::InspectResult> inspect(const std::string& root);

// Reads a whole regular file of at most `limit` bytes at `path` inside the
// guest root, resolving symlinks as if `root` were "/" (openat2
// RESOLVE_IN_ROOT), so a hostile guest cannot point the agent at host files.
[[nodiscard]] Result<std::string> read_guest_file(const std::string& root, const std::string& path,
                                                  size_t limit);

}  // namespace pv::agent
