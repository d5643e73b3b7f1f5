#pragma once

// Detection: which catalog packages an image needs; whether it got them is
// verified by the host after Apply (patcher/job/verification.hpp). Pure
// functions over in-memory data, so they are unit-tested and fuzzable
// without an image; the job converts the agent's InspectResult into
// InstalledPackage values.

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

// What a patch does to its package.
enum class PatchAction {
    upgrade,  // the package is installed at an older version
    install,  // a new package, needed by an upgrade (repository sources only)
};

[[nodiscard]] const char* action_name(PatchAction action);

struct Patch {
    PackageFile package;                 // the file to install
    std::string installed_version;       // the image's version before; empty for an install
    std::string installed_architecture;  // the image's architecture of the package
    std::vector<FixedAdvisory> advisories;
    PatchAction action = PatchAction::upgrade;
    // Why it is in the plan, for people: "security update from
    // bookworm-security", "new dependency of pv-fixture-tool".
    std::string reason;
};

// A package with a newer version available that the plan leaves alone.
struct KeptBack {
    std::string name;
    std::string architecture;
    std::string installed_version;
    std::string available_version;  // the newest the sources offer
    std::string reason;             // "held (dpkg selection hold)", ...
};

struct Detection {
    // The catalog's: sorted by package name, then architecture. A
    // repository's: in the order the resolver wants them unpacked.
    std::vector<Patch> patches;
    std::vector<KeptBack> kept_back;  // repository sources only
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

}  // namespace pv::patcher
