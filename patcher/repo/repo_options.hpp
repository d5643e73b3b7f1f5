#pragma once

// What `--repo` and its flags ask for (README.md "Repositories").

#include <optional>
#include <string>
#include <vector>

namespace pv::patcher::repo {

enum class UpgradeMode {
    // Only versions from a security suite (is_security_release(), resolver.hpp);
    // a dependency found only elsewhere keeps its dependent back.
    security,
    // The newest version the guest's pins allow, from any suite given.
    full,
};

[[nodiscard]] const char* upgrade_mode_name(UpgradeMode mode);

struct RepoOptions {
    // A directory holding dists/ and pool/, or a file: URI of one.
    std::string location;
    // dists/<suite> to use. Default: <codename>, <codename>-updates and
    // <codename>-security of the guest's VERSION_CODENAME, those the
    // repository has.
    std::vector<std::string> suites;
    // Default: every component the suite's Release lists.
    std::vector<std::string> components;
    // The only keyring trusted for the repository's signature. Default: the
    // guest's own /etc/apt/trusted.gpg(.d) and /usr/share/keyrings.
    std::optional<std::string> keyring;
    // Accept a Release whose Valid-Until has passed (an old offline snapshot).
    bool ignore_valid_until = false;
    UpgradeMode upgrade = UpgradeMode::security;
    // A Debian security tracker JSON dump or an OSV dump (advisories.hpp).
    std::optional<std::string> advisories;
};

}  // namespace pv::patcher::repo
