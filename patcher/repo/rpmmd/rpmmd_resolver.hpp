#pragma once

// The plan for an RPM guest, by libsolv (the solver of zypper and dnf): the
// installed packages from the guest's own rpmdb (each header read by
// guestfs/rpm, with its dependencies and files), the verified primary.xml
// and updateinfo.xml of the repository, then an update in which nothing is
// removed or downgraded and new dependencies are installed.
//   security: the repository's security advisories (updateinfo patches of
//             type "security") that apply to the guest are installed, as
//             `zypper patch --category security` does; only what they need
//             changes.
//   full:     every installed package is updated (`dnf upgrade`).

#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "patcher/detect/detect.hpp"
#include "patcher/repo/repo_options.hpp"
#include "patcher/repo/resolver.hpp"
#include "patcher/repo/rpmmd/rpmmd_repository.hpp"

namespace pv::patcher::repo {

struct RpmResolution {
    Resolution resolution;  // in rpm's install order
    // The advisories each planned upgrade fixes, by package name.
    std::map<std::string, std::vector<FixedAdvisory>> advisories;
};

// RPMDB: the bytes of the guest's rpmdb.sqlite.
[[nodiscard]] Result<RpmResolution> resolve_rpm_upgrade(const RpmMdRepository& repository,
                                                        std::string rpmdb, UpgradeMode mode);

}  // namespace pv::patcher::repo
