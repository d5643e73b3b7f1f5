#pragma once

// The planned .debs, copied out of the repository into the workspace and
// checked there, so that what is staged is exactly what was checked: the
// copy's SHA-256 and size must be the signed Packages entry's, and its own
// control fields (read by libapt-pkg) the plan's name, version and
// architecture.

#include <string>

#include "common/error.hpp"
#include "patcher/detect/package_file.hpp"
#include "patcher/repo/resolver.hpp"

namespace pv::patcher::repo {

[[nodiscard]] Result<PackageFile> fetch_verified(const PlannedPackage& planned,
                                                 const std::string& directory);

}  // namespace pv::patcher::repo
