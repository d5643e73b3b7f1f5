#pragma once

// The catalog's optional manifest.json, which names the advisories its
// packages fix (format: images/samples/README.md):
//   {"advisories": [{"id": "DSA-...", "cves": ["CVE-..."],
//                    "packages": [{"name": "libssl3", "fixed_version": "..."}]}]}
// Unknown fields are ignored so the format can grow; a known field of the
// wrong type is an error that names it by its JSON path.

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace pv::patcher {

struct AdvisoryPackage {
    std::string name;
    std::string fixed_version;  // the first version that is not vulnerable
};

struct Advisory {
    std::string id;
    std::vector<std::string> cves;  // may be empty
    std::vector<AdvisoryPackage> packages;
};

// Parses TEXT; LABEL names the source in errors, e.g. "CATALOG/manifest.json"
// gives "CATALOG/manifest.json: advisories[0].packages[1].name must be a string".
// "advisories", "id", "packages", "name" and "fixed_version" are required,
// "cves" is optional; strings must not be empty.
[[nodiscard]] Result<std::vector<Advisory>> parse_manifest(std::string_view text,
                                                           const std::string& label);

}  // namespace pv::patcher
