#pragma once

// The host's verification of a job's result (DESIGN.md "Detection"): once
// the sandbox has ended, the host reads the overlay's package database
// itself (guestfs/) and compares it with the plan. The agent's word decides
// nothing: a package that is not installed at exactly its planned version
// and architecture fails the job before anything is committed.
//
// The plan is a plain list of (name, architecture, version), so that any
// planner (the catalog's detection, a repository resolver that adds new
// dependencies) gives the same verification.

#include <chrono>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "guestfs/package_database.hpp"
#include "imgfmt/block_device.hpp"

namespace pv::patcher {

// A package the plan installs or upgrades, as its package manager will
// record it: the package file's name, architecture ("all" stays "all") and
// version.
struct ExpectedPackage {
    std::string name;
    std::string architecture;
    std::string version;

    bool operator==(const ExpectedPackage&) const = default;
};

// Why DATABASE does not show EXPECTED installed, one sentence per package
// ("libssl3:amd64 is at 3.0.20-1~deb12u2, not 3.0.22-1~deb12u2 as planned");
// empty when every package is installed at exactly its planned version.
[[nodiscard]] std::vector<std::string> find_disagreements(
    const std::vector<ExpectedPackage>& expected, const guestfs::PackageDatabase& database);

// The database's entry for NAME and ARCHITECTURE, or nullptr.
[[nodiscard]] const guestfs::InstalledPackage* find_package(
    const guestfs::PackageDatabase& database, const std::string& name,
    const std::string& architecture);

// Reads the package database of KIND on the image at OVERLAY_PATH (opened
// read-only with its backing file; the caller has flushed it) in a confined
// child within TIMEOUT, and checks it against EXPECTED. Returns what was
// read; any disagreement is an error listing each one.
[[nodiscard]] Result<guestfs::PackageDatabase> verify_on_host(
    const std::string& overlay_path, guestfs::DatabaseKind kind,
    const std::vector<ExpectedPackage>& expected, std::chrono::milliseconds timeout);

}  // namespace pv::patcher
