#pragma once

// Why apt's plan installs a new package or keeps one back, in words a
// person can check against apt-cache policy and the guest's preferences.

#include <optional>
#include <string>

#include "patcher/detect/detect.hpp"
#include "patcher/repo/apt_headers.hpp"
#include "patcher/repo/repo_options.hpp"

namespace pv::patcher::repo {

// "Depends: pv-fixture-newdep (>= 1.0)".
[[nodiscard]] std::string dependency_text(const pkgCache::DepIterator& dependency);

// For a package marked as a new install: "new dependency of X (Depends: ...)".
[[nodiscard]] std::string install_reason(pkgDepCache& cache, const pkgCache::PkgIterator& package);

// For an installed package that is not upgraded though a repository has a
// newer version: the KeptBack entry; nullopt when there is nothing newer.
[[nodiscard]] std::optional<KeptBack> explain_kept_back(pkgDepCache& cache,
                                                        const pkgCache::PkgIterator& package,
                                                        UpgradeMode mode);

}  // namespace pv::patcher::repo
