#pragma once

// The order apt would unpack the marked packages in: libapt-pkg's own
// pkgPackageManager ordering (pkgOrderList, Pre-Depends and immediate
// configuration), run without dpkg; each Install() it asks for is recorded.

#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "patcher/repo/apt_headers.hpp"

namespace pv::patcher::repo {

// The packages of CACHE marked for install or upgrade, in unpack order.
// FILES names each one's .deb by package id (the ordering treats a package
// without a file as not downloadable). Removals are an error: the plans
// here never remove.
[[nodiscard]] Result<std::vector<pkgCache::PkgIterator>> unpack_order(
    pkgDepCache& cache, const std::map<map_id_t, std::string>& files);

}  // namespace pv::patcher::repo
