#include "tests/unit/detect/oracles.hpp"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/support.hpp"

namespace pv::test {
namespace {

std::vector<int> parse_results(const CommandOutput& output, size_t expected, const char* tool) {
    std::vector<int> results;
    std::istringstream lines(output.output);
    std::string line;
    while (std::getline(lines, line)) {
        if (line == "-1" || line == "0" || line == "1")
            results.push_back(std::stoi(line));
    }
    EXPECT_EQ(output.exit_code, 0) << tool << " oracle failed:\n" << output.output;
    EXPECT_EQ(results.size(), expected) << tool << " oracle printed:\n" << output.output;
    return results;
}

}  // namespace

std::vector<int> dpkg_compare(const std::vector<VersionPair>& pairs) {
    EXPECT_TRUE(have_program("dpkg")) << "dpkg is missing; run scripts/install-deps";
    TempDir directory;
    std::ofstream list(directory.file("pairs"));
    for (const auto& [a, b] : pairs)
        list << a << ' ' << b << '\n';
    list.close();
    const std::string script =
        "while read -r a b; do "
        "if dpkg --compare-versions \"$a\" lt \"$b\"; then echo -1; "
        "elif dpkg --compare-versions \"$a\" eq \"$b\"; then echo 0; "
        "else echo 1; fi; done < " +
        quote(directory.file("pairs"));
    return parse_results(run(script), pairs.size(), "dpkg");
}

std::vector<int> rpm_compare(const std::vector<VersionPair>& pairs) {
    EXPECT_TRUE(have_program("rpm")) << "rpm is missing; run scripts/install-deps";
    TempDir directory;
    // The versions the tests use contain no quote or backslash characters,
    // so they can be Lua string literals as they are.
    std::ofstream script(directory.file("compare.lua"));
    script << "local pairs_ = {\n";
    for (const auto& [a, b] : pairs)
        script << "  {'" << a << "', '" << b << "'},\n";
    script << "}\nfor _, p in ipairs(pairs_) do io.write(rpm.vercmp(p[1], p[2]), '\\n') end\n";
    script.close();
    const std::string command =
        "rpm --eval " + quote("%{lua: dofile('" + directory.file("compare.lua") + "')}");
    return parse_results(run(command), pairs.size(), "rpm");
}

}  // namespace pv::test
