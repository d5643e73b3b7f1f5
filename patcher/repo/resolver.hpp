#pragma once

// The plan, by libapt-pkg: a pkgCacheFile over the workspace (the guest's
// dpkg status and the verified repository lists), the guest's pins, the
// upgrade with apt's problem resolver (new dependencies installed, nothing
// removed: APT::Upgrade::Upgrade with FORBID_REMOVE_PACKAGES, the
// `apt upgrade` rules), and apt's own unpack order. Holds (dpkg selection
// "hold") are honoured by apt itself.

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "patcher/detect/detect.hpp"
#include "patcher/repo/apt_workspace.hpp"
#include "patcher/repo/indexes.hpp"
#include "patcher/repo/repo_options.hpp"

namespace pv::patcher::repo {

struct PlannedPackage {
    std::string name;
    std::string architecture;       // the Architecture field of the new version
    std::string from_version;       // empty for a new package
    std::string from_architecture;  // the installed version's; empty for a new package
    std::string to_version;
    PatchAction action = PatchAction::upgrade;
    std::string reason;
    std::string suite;  // where the new version comes from
    bool security = false;
    // The .deb in the repository, with what the signed Packages says of it.
    std::string file;
    std::string sha256;
    uint64_t size = 0;
    // Source package and its versions, for advisories (which name sources).
    std::string source;
    std::string source_version;
    std::string installed_source_version;  // empty for a new package
};

struct Resolution {
    std::vector<PlannedPackage> plan;  // in unpack order
    std::vector<KeptBack> kept_back;   // sorted by name
};

// Needs configure_apt() and fetched indexes.
[[nodiscard]] Result<Resolution> resolve_upgrade(const Repository& repository, UpgradeMode mode,
                                                 const AptConfigured& configured);

}  // namespace pv::patcher::repo
