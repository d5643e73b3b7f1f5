#include "patcher/repo/resolver.hpp"

#include <algorithm>
#include <map>
#include <memory>

#include <fmt/format.h>

#include "patcher/repo/explain.hpp"
#include "patcher/repo/install_order.hpp"
#include "patcher/repo/security_policy.hpp"

namespace pv::patcher::repo {

namespace {

Error apt_error(const std::string& what) {
    return make_error(what, apt_failure_reason());
}

// Opens the cache with the policy of MODE: the guest's pins (read from the
// workspace's preferences) in both, narrowed to security updates in one.
Result<pkgDepCache*> open_cache(pkgCacheFile& cache, UpgradeMode mode) {
    pkgCache* packages = cache.GetPkgCache();
    if (packages == nullptr || _error->PendingError())
        return fail(
            apt_error("build the package cache from the guest's status and the repository"));
    if (mode == UpgradeMode::security) {
        auto policy = std::make_unique<SecurityOnlyPolicy>(packages);
        ReadPinFile(*policy);
        ReadPinDir(*policy);
        cache.Policy = policy.release();
    }
    pkgDepCache* depcache = cache.GetDepCache();
    // A pin the guest's own apt would only warn about still decides what is
    // installed: any warning stops here.
    if (depcache == nullptr || !_error->empty(GlobalError::WARNING))
        return fail(apt_error("read the guest's apt preferences"));
    return depcache;
}

std::string broken_packages(pkgDepCache& cache) {
    std::vector<std::string> names;
    for (auto package = cache.PkgBegin(); !package.end(); ++package)
        if (cache[package].InstBroken() || cache[package].NowBroken())
            names.push_back(package.FullName(true));
    return fmt::format("{}", fmt::join(names, ", "));
}

Result<void> run_upgrade(pkgDepCache& cache) {
    if (cache.BrokenCount() != 0)
        return fail(make_error("resolve the upgrade",
                               "the guest's packages have unmet dependencies "
                               "before any change: " +
                                   broken_packages(cache)));
    {
        pkgDepCache::ActionGroup group(cache);
        if (!APT::Upgrade::Upgrade(cache, APT::Upgrade::FORBID_REMOVE_PACKAGES))
            return fail(apt_error("resolve the upgrade"));
    }
    if (cache.BrokenCount() != 0 || cache.DelCount() != 0)
        return fail(make_error("resolve the upgrade",
                               "apt's resolver left broken packages: " + broken_packages(cache)));
    return {};
}

// The signed Packages entry of VERSION: its file and hashes, and the source.
Result<void> read_record(pkgRecords& records, const Repository& repository,
                         const pkgCache::VerIterator& version, PlannedPackage& planned) {
    const auto file = repository_file(version);
    if (file.end())
        return fail(make_error("plan " + planned.name, "no repository has " + planned.to_version));
    pkgRecords::Parser& record = records.Lookup(file);
    const std::string filename = record.FileName();
    if (filename.empty() || filename.front() == '/' || filename.find("..") != std::string::npos)
        return fail(make_error("plan " + planned.name,
                               "the Packages entry has an unusable Filename '" + filename + "'"));
    const HashStringList hashes = record.Hashes();  // find() points into it
    const HashString* sha256 = hashes.find("SHA256");
    if (sha256 == nullptr)
        return fail(make_error("plan " + planned.name, "the Packages entry has no SHA256"));
    planned.file = repository.root + "/" + filename;
    planned.sha256 = sha256->HashValue();
    planned.size = version->Size;
    planned.source = record.SourcePkg().empty() ? planned.name : record.SourcePkg();
    planned.source_version = record.SourceVer().empty() ? planned.to_version : record.SourceVer();
    return {};
}

std::string installed_source_version(pkgRecords& records, const pkgCache::VerIterator& current) {
    if (current.end() || current.FileList().end())
        return {};
    pkgRecords::Parser& record = records.Lookup(current.FileList());
    return record.SourceVer().empty() ? current.VerStr() : record.SourceVer();
}

Result<PlannedPackage> plan_package(pkgDepCache& cache, pkgRecords& records,
                                    const Repository& repository,
                                    const pkgCache::PkgIterator& package) {
    auto& state = cache[package];
    const auto version = state.InstVerIter(cache);
    const auto current = package.CurrentVer();
    PlannedPackage planned;
    planned.name = package.Name();
    planned.architecture = version.Arch();
    planned.to_version = version.VerStr();
    planned.suite = suite_of(version);
    planned.security = is_security_version(version);
    if (state.NewInstall()) {
        planned.action = PatchAction::install;
        planned.reason = install_reason(cache, package);
    } else {
        planned.from_version = current.VerStr();
        planned.from_architecture = current.Arch();
        planned.reason = fmt::format("{} from {}", planned.security ? "security update" : "update",
                                     planned.suite);
    }
    PV_TRY(read_record(records, repository, version, planned));
    planned.installed_source_version = installed_source_version(records, current);
    return planned;
}

Result<std::vector<PlannedPackage>> in_unpack_order(pkgDepCache& cache,
                                                    std::map<map_id_t, PlannedPackage> planned) {
    std::map<map_id_t, std::string> files;
    for (const auto& [id, package] : planned)
        files[id] = package.file;
    std::vector<PlannedPackage> ordered;
    for (const auto& package : PV_TRY(unpack_order(cache, files))) {
        auto found = planned.find(package->ID);
        if (found == planned.end())
            return fail(make_error("order the installation", "apt's ordering unpacks " +
                                                                 package.FullName(true) +
                                                                 ", which the plan does not hold"));
        ordered.push_back(std::move(found->second));
        planned.erase(found);
    }
    if (!planned.empty())
        return fail(make_error("order the installation",
                               "apt's ordering left out " + planned.begin()->second.name));
    return ordered;
}

}  // namespace

Result<Resolution> resolve_upgrade(const Repository& repository, UpgradeMode mode,
                                   const AptConfigured& /*configured*/) {
    pkgCacheFile cache;
    pkgDepCache* depcache = PV_TRY(open_cache(cache, mode));
    PV_TRY(run_upgrade(*depcache));
    pkgRecords records(*depcache);
    Resolution resolution;
    std::map<map_id_t, PlannedPackage> planned;
    for (auto package = depcache->PkgBegin(); !package.end(); ++package) {
        auto& state = (*depcache)[package];
        if (state.Downgrade() || state.Delete())
            return fail(
                make_error("resolve the upgrade",
                           "apt's resolver would downgrade or remove " + package.FullName(true)));
        // Upgrade(): a newer version, or a new package (Status 2).
        if (state.Upgrade())
            planned.emplace(package->ID,
                            PV_TRY(plan_package(*depcache, records, repository, package)));
        else if (auto kept = explain_kept_back(*depcache, package, mode))
            resolution.kept_back.push_back(std::move(*kept));
    }
    resolution.plan = PV_TRY(in_unpack_order(*depcache, std::move(planned)));
    std::sort(resolution.kept_back.begin(), resolution.kept_back.end(),
              [](const KeptBack& a, const KeptBack& b) {
                  return std::tie(a.name, a.architecture) < std::tie(b.name, b.architecture);
              });
    if (const std::string problems = take_apt_problems(); !problems.empty())
        return fail(make_error("resolve the upgrade", problems));
    return resolution;
}

}  // namespace pv::patcher::repo
