#pragma once

// A patch catalog: a directory of package files (.deb, .rpm) and an optional
// manifest.json naming the advisories they fix (manifest.hpp).

#include <string>
#include <vector>

#include "common/error.hpp"
#include "patcher/detect/manifest.hpp"
#include "patcher/detect/package_file.hpp"

namespace pv::patcher {

// A package file that could not be read, with the reason.
struct CatalogProblem {
    std::string file;
    std::string message;
};

struct Catalog {
    std::string directory;
    std::vector<PackageFile> packages;  // sorted by file name
    std::vector<Advisory> advisories;   // empty without a manifest
    // Package files that could not be read. Every file is read even when an
    // earlier one is bad, so one corrupt download does not hide the others.
    std::vector<CatalogProblem> problems;
};

// What load_catalog() does with unreadable package files.
enum class CatalogPolicy {
    // Any problem fails the load, the error listing every bad file. This is
    // what a patch job wants: a catalog it cannot fully read is not patched from.
    strict,
    // Problems are returned in Catalog::problems next to the good packages,
    // for reporting (`patchvisor check`) and tests.
    collect,
};

// Reads DIRECTORY: every regular file named *.deb or *.rpm (hidden files and
// other names are ignored) and manifest.json if present. An unreadable
// directory or a bad manifest is always an error.
[[nodiscard]] Result<Catalog> load_catalog(const std::string& directory,
                                           CatalogPolicy policy = CatalogPolicy::strict);

}  // namespace pv::patcher
