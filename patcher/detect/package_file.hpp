#pragma once

// One package file of a catalog (.deb or .rpm): its identity as the package
// manager will see it, read with the ecosystem's own library, and its hash.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "patcher/detect/version.hpp"

namespace pv::patcher {

struct PackageFile {
    std::string path;  // as given to read_package_file()
    PackageFamily family = PackageFamily::deb;
    std::string name;
    // Debian: the control file's Version. RPM: "[epoch:]version-release",
    // the epoch left out when the header has none, as the agent reports it.
    std::string version;
    std::string architecture;
    std::string sha256;  // lower-case hex of the file's bytes
    uint64_t size = 0;
};

// The family a file name announces: ".deb" or ".rpm", nothing otherwise.
[[nodiscard]] std::optional<PackageFamily> family_of_file_name(std::string_view name);

// Reads the control fields of the .deb (libapt-pkg's debDebFile, which reads
// control.tar.{gz,xz,zst}) or the header of the .rpm (librpm's
// rpmReadPackageFile; header digests are checked, signatures are not, since
// the catalog's trust comes from its operator) at PATH, and hashes the file.
// Errors name the file and say what is wrong with it.
[[nodiscard]] Result<PackageFile> read_package_file(const std::string& path);

struct FileDigest {
    std::string sha256;  // lower-case hex
    uint64_t size = 0;
};

// SHA-256 of the bytes of the file at PATH (OpenSSL).
[[nodiscard]] Result<FileDigest> sha256_of_file(const std::string& path);

}  // namespace pv::patcher
