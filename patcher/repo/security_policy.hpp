#pragma once

// `--upgrade security`: which versions count as security updates, and an
// apt policy that offers only those as candidates.
//
// The rule: a version is a security update when one of the repository files
// it is in comes from a Release whose Suite or Codename ends in "-security"
// (Debian 11 and later, Ubuntu) or whose Label is "Debian-Security" (the
// Debian security archive, also its older "<codename>/updates" suites).

#include "patcher/repo/apt_headers.hpp"

namespace pv::patcher::repo {

[[nodiscard]] bool is_security_file(const pkgCache::PkgFileIterator& file);
[[nodiscard]] bool is_security_version(const pkgCache::VerIterator& version);

// The repository file a version is downloaded from (not the dpkg status
// file); end() for a version only the status file knows.
[[nodiscard]] pkgCache::VerFileIterator repository_file(const pkgCache::VerIterator& version);

// The suite a version comes from ("bookworm-security"); "" if none.
[[nodiscard]] std::string suite_of(const pkgCache::VerIterator& version);

// apt's policy (the guest's pins and priorities), with one change: a
// candidate must be the installed version or a security update. Where the
// guest's policy would pick another version, the best security version
// newer than the installed one is taken (highest priority, then newest);
// failing that, the installed version, and for a package not installed,
// none, so that it cannot be pulled in as a dependency.
class SecurityOnlyPolicy final : public pkgPolicy {
  public:
    explicit SecurityOnlyPolicy(pkgCache* cache) : pkgPolicy(cache) {}
    pkgCache::VerIterator GetCandidateVer(pkgCache::PkgIterator const& package) override;
};

}  // namespace pv::patcher::repo
