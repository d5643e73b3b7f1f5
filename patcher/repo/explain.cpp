#include "patcher/repo/explain.hpp"

#include <vector>

#include <fmt/format.h>

#include "patcher/repo/security_policy.hpp"

namespace pv::patcher::repo {

namespace {

bool newer(pkgDepCache& cache, const pkgCache::VerIterator& a, const pkgCache::VerIterator& b) {
    return b.end() || cache.VS().CmpVersion(a.VerStr(), b.VerStr()) > 0;
}

// Whether what the plan installs matches DEPENDENCY (for a negative one:
// conflicts with it), directly or through a Provides; libapt-pkg's own
// CheckDep is not public. A package never conflicts with itself.
bool matched_by_plan(pkgDepCache& cache, const pkgCache::DepIterator& dependency) {
    const auto target = dependency.TargetPkg();
    if (dependency.IsNegative() && target == dependency.ParentPkg())
        return false;
    const auto installed = cache[target].InstVerIter(cache);
    if (!installed.end() && dependency.IsSatisfied(installed))
        return true;
    for (auto provides = target.ProvidesList(); !provides.end(); ++provides) {
        if (cache[provides.OwnerPkg()].InstVerIter(cache) == provides.OwnerVer() &&
            dependency.IsSatisfied(provides))
            return true;
    }
    return false;
}

// Why the dependency cannot be met by what the plan installs.
std::string unmet_because(pkgDepCache& cache, const pkgCache::DepIterator& dependency,
                          UpgradeMode mode) {
    const auto target = dependency.TargetPkg();
    if (dependency.IsNegative())
        return "it would conflict with what stays installed";
    if (target->SelectedState == pkgCache::State::Hold)
        return target.FullName(true) + " is held";
    auto& state = cache[target];
    if (state.CandidateVerIter(cache).end())
        return target.FullName(true) + (mode == UpgradeMode::security
                                            ? " has no version from a security suite"
                                            : " has no installable version");
    const auto installed = state.InstVerIter(cache);
    if (installed.end())
        return target.FullName(true) + " would not be installed";
    return fmt::format("{} stays at {}", target.FullName(true), installed.VerStr());
}

// The first critical dependency of VERSION that the plan leaves unmet.
std::optional<std::string> unmet_dependency(pkgDepCache& cache,
                                            const pkgCache::VerIterator& version,
                                            UpgradeMode mode) {
    for (auto dependency = version.DependsList(); !dependency.end();) {
        pkgCache::DepIterator first, last;
        dependency.GlobOr(first, last);  // advances past the or-group
        if (!first.IsCritical())
            continue;
        bool satisfied = false;
        for (auto member = first;; ++member) {
            satisfied = satisfied || matched_by_plan(cache, member);
            if (member == last)
                break;
        }
        // A negative dependency is met when no member conflicts.
        if (first.IsNegative() ? !satisfied : satisfied)
            continue;
        return fmt::format("{} needs {}: {}", version.VerStr(), dependency_text(first),
                           unmet_because(cache, first, mode));
    }
    return std::nullopt;
}

// Why the policy did not offer VERSION, a newer version than the installed.
std::string not_offered_because(pkgDepCache& cache, const pkgCache::VerIterator& version,
                                const pkgCache::VerIterator& current, UpgradeMode mode) {
    auto& policy = cache.GetPolicy();
    const signed short priority = policy.GetPriority(version);
    if (priority < 0)
        return fmt::format("{} is pinned away (Pin-Priority {})", version.VerStr(), priority);
    if (const signed short installed = policy.GetPriority(current); priority < installed)
        return fmt::format("{} has priority {}, below the installed version's {}", version.VerStr(),
                           priority, installed);
    if (mode == UpgradeMode::security && !is_security_version(version))
        return fmt::format("{} ({}) is not a security update", version.VerStr(), suite_of(version));
    return fmt::format("{} is not apt's candidate (priority {})", version.VerStr(), priority);
}

}  // namespace

std::string dependency_text(const pkgCache::DepIterator& dependency) {
    std::string text =
        fmt::format("{}: {}", dependency.DepType(), dependency.TargetPkg().FullName(true));
    if (dependency.TargetVer() != nullptr)
        text += fmt::format(" ({} {})", dependency.CompType(), dependency.TargetVer());
    return text;
}

std::string install_reason(pkgDepCache& cache, const pkgCache::PkgIterator& package) {
    const auto version = cache[package].InstVerIter(cache);
    // Dependents name the package itself, or a virtual package it provides.
    std::vector<pkgCache::PkgIterator> names{package};
    for (auto provides = version.ProvidesList(); !provides.end(); ++provides)
        names.push_back(provides.ParentPkg());
    for (const auto& name : names) {
        for (auto dependency = name.RevDependsList(); !dependency.end(); ++dependency) {
            if (!dependency.IsCritical() || dependency.IsNegative())
                continue;
            const auto parent = dependency.ParentPkg();
            auto& state = cache[parent];
            if (state.Install() && state.InstVerIter(cache) == dependency.ParentVer())
                return fmt::format("new dependency of {} ({})", parent.FullName(true),
                                   dependency_text(dependency));
        }
    }
    return "new package chosen by apt's resolver";
}

std::optional<KeptBack> explain_kept_back(pkgDepCache& cache, const pkgCache::PkgIterator& package,
                                          UpgradeMode mode) {
    const auto current = package.CurrentVer();
    std::vector<pkgCache::VerIterator> newer_versions;
    for (auto version = package.VersionList(); !version.end(); ++version)
        if (!repository_file(version).end() && newer(cache, version, current))
            newer_versions.push_back(version);
    if (current.end() || newer_versions.empty())
        return std::nullopt;
    KeptBack kept{package.Name(), current.Arch(), current.VerStr(), newer_versions.front().VerStr(),
                  ""};
    if (package->SelectedState == pkgCache::State::Hold) {
        kept.reason = "held (dpkg selection hold)";
        return kept;
    }
    const auto candidate = cache[package].CandidateVerIter(cache);
    if (!candidate.end() && newer(cache, candidate, current)) {
        kept.reason = unmet_dependency(cache, candidate, mode)
                          .value_or("kept back by apt's problem resolver");
        return kept;
    }
    for (const auto& version : newer_versions)
        kept.reason +=
            (kept.reason.empty() ? "" : "; ") + not_offered_because(cache, version, current, mode);
    return kept;
}

}  // namespace pv::patcher::repo
