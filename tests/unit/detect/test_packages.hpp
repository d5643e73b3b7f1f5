#pragma once

// Tiny package files built by the real tools (dpkg-deb, rpmbuild) for the
// catalog tests. Failures throw, which fails the calling test with the
// tool's output.

#include <string>

namespace pv::test {

struct DebSpec {
    std::string name;
    std::string version;
    std::string architecture = "amd64";
    std::string compression = "xz";  // dpkg-deb -Z: gzip, xz, zstd, none
};

// Builds the package in DIRECTORY and returns the path of the .deb.
[[nodiscard]] std::string build_deb(const std::string& directory, const DebSpec& spec);

struct RpmSpec {
    std::string name;
    std::string version;
    std::string release;
    std::string epoch;  // empty: no Epoch tag
    std::string architecture = "x86_64";
};

// Builds the package (no files) in DIRECTORY and returns the path of the .rpm.
[[nodiscard]] std::string build_rpm(const std::string& directory, const RpmSpec& spec);

}  // namespace pv::test
