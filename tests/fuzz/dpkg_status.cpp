// Fuzz target: the agent's parsers of guest package databases and
// os-release, which read files a hostile guest wrote. The whole input goes
// to each parser; their documented promises are checked on the result.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "agent/inventory.hpp"

namespace {

// A field value is one line of the input: a newline inside one would let a
// guest forge extra lines in what the host reports or logs.
void check_single_line(std::string_view value) {
    if (value.find('\n') != std::string_view::npos)
        std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    // parse_dpkg_status skips paragraphs without Package or Version, so an
    // empty name or version in the result is a parser bug.
    for (const auto& package : pv::agent::parse_dpkg_status(text)) {
        if (package.name.empty() || package.version.empty())
            std::abort();
        check_single_line(package.name);
        check_single_line(package.version);
        check_single_line(package.architecture);
        check_single_line(package.status);
    }
    for (const auto& package : pv::agent::parse_rpm_query(text)) {
        check_single_line(package.name);
        check_single_line(package.version);
        check_single_line(package.architecture);
    }
    for (const auto& [key, value] : pv::agent::parse_os_release(text)) {
        if (key.empty())
            std::abort();
        check_single_line(key);
    }
    return 0;
}
