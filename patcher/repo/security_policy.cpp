#include "patcher/repo/security_policy.hpp"

#include <string_view>

namespace pv::patcher::repo {

namespace {

bool ends_with(const char* text, std::string_view suffix) {
    return text != nullptr && std::string_view(text).ends_with(suffix);
}

}  // namespace

bool is_security_file(const pkgCache::PkgFileIterator& file) {
    if (file.end() || file.Flagged(pkgCache::Flag::NotSource))
        return false;
    const char* label = file.Label();
    return ends_with(file.Archive(), "-security") || ends_with(file.Codename(), "-security") ||
           (label != nullptr && std::string_view(label) == "Debian-Security");
}

bool is_security_version(const pkgCache::VerIterator& version) {
    for (auto file = version.FileList(); !file.end(); ++file)
        if (is_security_file(file.File()))
            return true;
    return false;
}

pkgCache::VerFileIterator repository_file(const pkgCache::VerIterator& version) {
    // A security file first, so that a version in two suites is reported
    // (and counted) as the security update it also is.
    for (auto file = version.FileList(); !file.end(); ++file)
        if (is_security_file(file.File()))
            return file;
    for (auto file = version.FileList(); !file.end(); ++file)
        if (!file.File().Flagged(pkgCache::Flag::NotSource))
            return file;
    return pkgCache::VerFileIterator();  // end(): only the status file has it
}

std::string suite_of(const pkgCache::VerIterator& version) {
    const auto file = repository_file(version);
    if (file.end())
        return {};
    const auto package_file = file.File();
    if (const char* suite = package_file.Archive(); suite != nullptr && *suite != 0)
        return suite;
    if (const char* codename = package_file.Codename(); codename != nullptr)
        return codename;
    return {};
}

pkgCache::VerIterator SecurityOnlyPolicy::GetCandidateVer(pkgCache::PkgIterator const& package) {
    const pkgCache::VerIterator candidate = pkgPolicy::GetCandidateVer(package);
    const pkgCache::VerIterator current = package.CurrentVer();
    if (candidate.end() || candidate == current || is_security_version(candidate))
        return candidate;
    pkgCache::VerIterator best;
    signed short best_priority = 0;
    // VersionList is newest first, so the first of a priority is its newest.
    for (auto version = package.VersionList(); !version.end(); ++version) {
        if (!is_security_version(version))
            continue;
        if (!current.end() && Cache->VS->CmpVersion(version.VerStr(), current.VerStr()) <= 0)
            continue;
        const signed short priority = GetPriority(version);
        if (priority > 0 && (best.end() || priority > best_priority)) {
            best = version;
            best_priority = priority;
        }
    }
    if (!best.end())
        return best;
    return current;
}

}  // namespace pv::patcher::repo
