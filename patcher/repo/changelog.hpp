#pragma once

// The fallback when no advisory dump names an update: the CVE and DSA/DLA
// ids in the Debian changelog entries the update brings, read from the
// .deb's usr/share/doc/PACKAGE/changelog.Debian.gz (the same source the
// catalog recipe uses, images/samples/catalog/build.sh).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace pv::patcher::repo {

struct ChangelogIds {
    std::vector<std::string> cves;        // CVE-YYYY-NNNN..., sorted, unique
    std::vector<std::string> advisories;  // DSA-N-N / DLA-N-N, sorted, unique
};

// The ids in the entries of TEXT (a Debian changelog, newest entry first)
// whose version is newer than SINCE, stopping at the first entry that is
// not. An entry whose header does not parse ends the scan.
[[nodiscard]] ChangelogIds changelog_ids_since(std::string_view text, const std::string& since);

// usr/share/doc/PACKAGE/changelog.Debian.gz of the .deb at PATH, inflated;
// nullopt when the package has none (its doc directory may be a symlink to
// another package's). Needs libapt-pkg set up (it reads data.tar.*).
[[nodiscard]] Result<std::optional<std::string>> read_deb_changelog(const std::string& path,
                                                                    const std::string& package);

}  // namespace pv::patcher::repo
