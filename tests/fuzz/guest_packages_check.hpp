#pragma once

// What the host's package database readers promise about every package they
// return (guestfs/package_database.hpp), checked by the fuzz targets that
// reach them: a name, single-line printable ASCII within the limits, and no
// package listed twice (rpm may list one name and architecture at several
// versions: UNIQUE false).

#include <cstdlib>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "guestfs/package_database.hpp"

namespace pv::fuzz {

inline void check_field(const std::string& value) {
    if (value.size() > guestfs::kMaxFieldBytes)
        std::abort();
    for (const char c : value)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            std::abort();
}

inline void check_packages(const std::vector<guestfs::InstalledPackage>& packages,
                           bool unique = true) {
    if (packages.size() > guestfs::kMaxPackages)
        std::abort();
    std::set<std::pair<std::string, std::string>> seen;
    for (const auto& package : packages) {
        if (package.name.empty() || package.version.empty() || package.status.empty())
            std::abort();
        for (const auto* field :
             {&package.name, &package.architecture, &package.version, &package.status})
            check_field(*field);
        if (!seen.emplace(package.name, package.architecture).second && unique)
            std::abort();
    }
}

}  // namespace pv::fuzz
