#include "patcher/detect/detect.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

namespace pv::patcher {
namespace {

// Versions reaching these helpers have been checked, so a comparison error
// cannot happen; treating it as "not newer" keeps detection from ever
// proposing a package on a comparison it could not make.
int order(PackageFamily family, const std::string& a, const std::string& b) {
    auto result = compare_versions(family, a, b);
    return result ? *result : 0;
}

bool architecture_matches(PackageFamily family, const std::string& catalog_architecture,
                          const std::string& installed_architecture) {
    return catalog_architecture == installed_architecture ||
           catalog_architecture == architecture_independent(family);
}

// The image's packages by (name, architecture), each with its newest version.
// Several instances of one name and architecture exist for install-only
// packages such as RPM kernels.
using InstalledKey = std::pair<std::string, std::string>;

std::map<InstalledKey, std::string> newest_installed(PackageFamily family,
                                                     const std::vector<InstalledPackage>& installed,
                                                     std::vector<std::string>& warnings) {
    std::map<InstalledKey, std::string> newest;
    std::set<InstalledKey> invalid;
    for (const InstalledPackage& package : installed) {
        const InstalledKey key{package.name, package.architecture};
        if (auto valid = check_version(family, package.version); !valid) {
            warnings.push_back(fmt::format("installed package {} ({}) is left alone: {}",
                                           package.name, package.architecture,
                                           valid.error().message()));
            invalid.insert(key);
            continue;
        }
        auto [slot, inserted] = newest.try_emplace(key, package.version);
        if (!inserted && order(family, package.version, slot->second) > 0)
            slot->second = package.version;
    }
    for (const InstalledKey& key : invalid)
        newest.erase(key);
    return newest;
}

// The newest catalog package of FAMILY that can replace NAME on ARCHITECTURE.
const PackageFile* newest_candidate(PackageFamily family, const std::string& name,
                                    const std::string& architecture,
                                    const std::vector<PackageFile>& catalog_packages) {
    const PackageFile* best = nullptr;
    for (const PackageFile& package : catalog_packages) {
        if (package.family != family || package.name != name ||
            !architecture_matches(family, package.architecture, architecture))
            continue;
        if (!best || order(family, package.version, best->version) > 0)
            best = &package;
    }
    return best;
}

std::vector<FixedAdvisory> fixed_advisories(PackageFamily family, const Patch& patch,
                                            const std::vector<Advisory>& advisories,
                                            std::vector<std::string>& warnings) {
    std::vector<FixedAdvisory> fixed;
    for (const Advisory& advisory : advisories) {
        for (const AdvisoryPackage& package : advisory.packages) {
            if (package.name != patch.package.name)
                continue;
            if (auto valid = check_version(family, package.fixed_version); !valid) {
                warnings.push_back(fmt::format("advisory {} is not matched for {}: {}", advisory.id,
                                               package.name, valid.error().message()));
                continue;
            }
            if (order(family, package.fixed_version, patch.package.version) <= 0 &&
                order(family, package.fixed_version, patch.installed_version) > 0) {
                fixed.push_back(FixedAdvisory{advisory.id, advisory.cves, package.fixed_version});
                break;  // An advisory counts once per package.
            }
        }
    }
    return fixed;
}

}  // namespace

Detection detect_patches(PackageFamily family, const std::vector<InstalledPackage>& installed,
                         const std::vector<PackageFile>& catalog_packages,
                         const std::vector<Advisory>& advisories) {
    Detection detection;
    std::set<std::string> chosen_files;
    for (const auto& [key, version] : newest_installed(family, installed, detection.warnings)) {
        const auto& [name, architecture] = key;
        const PackageFile* candidate =
            newest_candidate(family, name, architecture, catalog_packages);
        // Strictly newer only: equal is already patched, older is a downgrade.
        if (!candidate || order(family, candidate->version, version) <= 0)
            continue;
        // An "all"/"noarch" file can match instances of several architectures;
        // it is installed once.
        if (!chosen_files.insert(candidate->path).second)
            continue;
        Patch patch{
            *candidate, version, architecture, {}, PatchAction::upgrade, "newer in the catalog"};
        patch.advisories = fixed_advisories(family, patch, advisories, detection.warnings);
        detection.patches.push_back(std::move(patch));
    }
    return detection;
}

Detection detect_patches(PackageFamily family, const std::vector<InstalledPackage>& installed,
                         const Catalog& catalog) {
    return detect_patches(family, installed, catalog.packages, catalog.advisories);
}

const char* action_name(PatchAction action) {
    switch (action) {
        case PatchAction::upgrade:
            return "upgrade";
        case PatchAction::install:
            return "install";
    }
    return "upgrade";
}

}  // namespace pv::patcher
