#pragma once

// Version order of the two package ecosystems patchvisor patches. The order
// always comes from the ecosystem's own library (libapt-pkg, librpm), never
// from a comparison written here, so that "newer" means what dpkg and rpm
// will mean when they install the patch.

#include <string>
#include <string_view>

#include "common/error.hpp"

namespace pv::patcher {

// Which package manager an image (or a package file) belongs to.
enum class PackageFamily { deb, rpm };

[[nodiscard]] const char* family_name(PackageFamily family);

// The architecture value that matches every architecture: Debian's "all",
// RPM's "noarch".
[[nodiscard]] const char* architecture_independent(PackageFamily family);

// Checks that TEXT is a version the family's tools accept. Debian: the
// conditions dpkg treats as fatal syntax errors (empty, whitespace, a bad
// epoch, an empty upstream version or revision). RPM: librpm's EVR parser.
[[nodiscard]] Result<void> check_version(PackageFamily family, std::string_view text);

// Negative, zero or positive as A is older than, equal to or newer than B.
// Debian versions go through libapt-pkg's debVS; RPM "[epoch:]version[-release]"
// strings through librpm's rpmverCmp (a missing epoch is 0). Both versions
// are checked with check_version() first; an invalid one is an error.
[[nodiscard]] Result<int> compare_versions(PackageFamily family, std::string_view a,
                                           std::string_view b);

}  // namespace pv::patcher
