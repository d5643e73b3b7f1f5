#pragma once

// The installed packages of a guest, read by the host from the guest's own
// package database (never from the agent): for dpkg the status file
// (dpkg/dpkg_database.hpp), for rpm its sqlite database
// (rpm/rpm_database.hpp). Another package manager's database joins as one
// more DatabaseKind and one more reader over a GuestFilesystem.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "guestfs/filesystem.hpp"
#include "imgfmt/block_device.hpp"

namespace pv::guestfs {

enum class DatabaseKind { Dpkg, Rpm };

[[nodiscard]] std::string_view database_name(DatabaseKind kind);  // "dpkg", "rpm"

// What a database may hold before it is refused as hostile: as many
// packages as the agent protocol accepts (patcher/session_limits.hpp), and
// names, architectures, versions and states of bounded length.
inline constexpr size_t kMaxPackages = 200'000;
inline constexpr size_t kMaxFieldBytes = 512;

struct InstalledPackage {
    std::string name;
    std::string architecture;  // as recorded: "amd64", "all", "x86_64", "noarch"
    std::string version;       // as recorded: dpkg "[epoch:]upstream[-revision]"
    std::string status;        // as recorded: dpkg "install ok installed"
    // Fully installed: dpkg's flag "ok" and state "installed" (not
    // unpacked, half-configured, triggers-pending...).
    bool installed = false;

    bool operator==(const InstalledPackage&) const = default;
};

struct PackageDatabase {
    DatabaseKind kind = DatabaseKind::Dpkg;
    // What was read: "/var/lib/dpkg/status on partition 1 (...) of IMAGE".
    std::string location;
    std::vector<InstalledPackage> packages;
};

// Reads the database of KIND out of FILESYSTEM.
[[nodiscard]] Result<PackageDatabase> read_package_database(GuestFilesystem& filesystem,
                                                            DatabaseKind kind);

// Finds the root filesystem on DISK (root.hpp) and reads its database, in
// this process. patcher code should use read_package_database_confined
// (confined_read.hpp), which does the same in a sandboxed child.
[[nodiscard]] Result<PackageDatabase> read_package_database(img::BlockDevice& disk,
                                                            DatabaseKind kind);

}  // namespace pv::guestfs
