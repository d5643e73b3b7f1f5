#pragma once

// The repository's indexes, fetched and verified by libapt-pkg's own
// acquire code, as `apt-get update` does it: InRelease (or Release +
// Release.gpg) checked with gpgv against the workspace's keyrings only,
// Valid-Until and Date honoured, every Packages file (whichever of .xz, .gz
// or plain the Release lists) checked against the signed hashes. Any error
// or warning apt reports fails the fetch with apt's own words.

#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "patcher/repo/apt_workspace.hpp"
#include "patcher/repo/repo_options.hpp"

namespace pv::patcher::repo {

struct Repository {
    std::string root;  // absolute directory holding dists/
    std::string uri;   // file: URI of root, as apt names it in its messages
    // Suite → components, in the order given.
    std::vector<std::pair<std::string, std::vector<std::string>>> suites;
};

// The absolute directory of --repo LOCATION: a path, or a local file: URI.
[[nodiscard]] Result<std::string> repository_directory(const std::string& location);

// Finds the repository of OPTIONS: the directory (or file: URI) must hold
// dists/; the suites are OPTIONS.suites or, by default, CODENAME,
// CODENAME-updates and CODENAME-security where dists/ has them; the
// components are OPTIONS.components or those each suite's Release lists
// (read before its signature is checked, only to name the indexes; apt
// then verifies that same file).
[[nodiscard]] Result<Repository> find_repository(const RepoOptions& options,
                                                 const std::string& codename);

// Writes the workspace's sources.list for REPOSITORY (needs no lock).
[[nodiscard]] Result<void> write_sources_list(const Repository& repository,
                                              const AptWorkspace& workspace);

// Fetches and verifies the indexes into the workspace's lists (needs
// configure_apt()). Returns a line saying what was verified.
[[nodiscard]] Result<std::string> fetch_indexes(const Repository& repository,
                                                const AptConfigured& configured);

}  // namespace pv::patcher::repo
