// Fuzz target: the catalog's manifest.json parser and the version checks.
// Catalogs are files the user points us at, and versions come from guest
// package databases, so both parse bytes we do not control. The first line
// of the input is a pair of versions; the rest is the manifest.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "patcher/detect/manifest.hpp"
#include "patcher/detect/version.hpp"
#include "tests/fuzz/fuzz_input.hpp"

namespace {

using pv::patcher::PackageFamily;

int sign(int value) {
    return (value > 0) - (value < 0);
}

// A valid version compares equal to itself, and comparing in the other
// order gives the opposite sign; detection relies on both.
void check_versions(PackageFamily family, std::string_view a, std::string_view b) {
    const bool a_valid = pv::patcher::check_version(family, a).has_value();
    const bool b_valid = pv::patcher::check_version(family, b).has_value();
    auto forward = pv::patcher::compare_versions(family, a, b);
    auto backward = pv::patcher::compare_versions(family, b, a);
    if (forward.has_value() != (a_valid && b_valid) || backward.has_value() != forward.has_value())
        std::abort();
    if (forward && sign(*forward) != -sign(*backward))
        std::abort();
    if (a_valid) {
        auto same = pv::patcher::compare_versions(family, a, a);
        if (!same || *same != 0)
            std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    pv::fuzz::Input input(data, size);
    std::string_view versions = input.take_until('\n');
    const size_t space = versions.find(' ');
    const std::string_view a = versions.substr(0, space);
    const std::string_view b =
        space == std::string_view::npos ? std::string_view{} : versions.substr(space + 1);
    check_versions(PackageFamily::deb, a, b);
    check_versions(PackageFamily::rpm, a, b);

    auto advisories = pv::patcher::parse_manifest(input.rest(), "fuzz/manifest.json");
    if (advisories) {
        // The parser promises non-empty required strings.
        for (const auto& advisory : *advisories) {
            if (advisory.id.empty())
                std::abort();
            for (const auto& package : advisory.packages) {
                if (package.name.empty() || package.fixed_version.empty())
                    std::abort();
            }
        }
    }
    return 0;
}
