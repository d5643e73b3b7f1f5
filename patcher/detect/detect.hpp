#pragma once

// Detection: which catalog packages an image needs, and after Apply, whether
// it got them. Pure functions over in-memory data, so they are unit-tested
// and fuzzable without an image; the job converts the agent's InspectResult
// into InstalledPackage values.

#include <string>
#include <vector>

#include "patcher/detect/catalog.hpp"
#include "patcher/detect/version.hpp"

namespace pv::patcher {

// One package as the image's package database lists it. RPM versions are
// "[epoch:]version-release" as the agent reports them.
struct InstalledPackage {
    std::string name;
    std::string version;
    std::string architecture;
};

// An advisory a patch fixes in this image, with the version that fixed it.
struct FixedAdvisory {
    std::string id;
    std::vector<std::string> cves;
    std::string fixed_version;
};

struct Patch {
    PackageFile package;                 // the catalog file to install
    std::string installed_version;       // the image's version before the patch
    std::string installed_architecture;  // the image's architecture of the package
    std::vector<FixedAdvisory> advisories;
};

struct Detection {
    std::vector<Patch> patches;  // sorted by package name, then architecture
    // Things that were left out rather than guessed at: installed packages
    // or manifest versions that the family's version rules reject.
    std::vector<std::string> warnings;
};

// The patches that apply to an image of FAMILY with INSTALLED packages.
// A catalog package applies when the image has a package of that name and
// architecture (a catalog "all"/"noarch" package matches any architecture)
// and every installed instance of it is older than the catalog's version.
// Of several catalog versions the newest is chosen; nothing is ever
// downgraded and packages of the other family are ignored. Each patch lists
// the advisories whose fixed_version for it is newer than the installed
// version and not newer than the patch.
[[nodiscard]] Detection detect_patches(PackageFamily family,
                                       const std::vector<InstalledPackage>& installed,
                                       const std::vector<PackageFile>& catalog_packages,
                                       const std::vector<Advisory>& advisories);

// The same over a loaded catalog.
[[nodiscard]] Detection detect_patches(PackageFamily family,
                                       const std::vector<InstalledPackage>& installed,
                                       const Catalog& catalog);

// An intended package that is not at the patch version after Apply.
struct VerifyFailure {
    std::string name;
    std::string architecture;
    std::string expected_version;
    std::string found_version;  // the newest matching version found; empty if none

    [[nodiscard]] std::string message() const;
};

// Checks the re-inventoried package list AFTER against PATCHES: every
// patched package must now be installed at exactly its patch version.
// Returns one failure per package that is not; empty means verified.
[[nodiscard]] std::vector<VerifyFailure> verify_patches(PackageFamily family,
                                                        const std::vector<Patch>& patches,
                                                        const std::vector<InstalledPackage>& after);

}  // namespace pv::patcher
