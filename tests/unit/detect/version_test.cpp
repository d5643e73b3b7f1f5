// Version order against the package tools as oracles: dpkg --compare-versions
// for Debian, rpm's own comparison (through the rpm CLI) for RPM.

#include "patcher/detect/version.hpp"

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/support.hpp"
#include "tests/unit/detect/oracles.hpp"

namespace pv::patcher {
namespace {

using test::VersionPair;

struct Expected {
    std::string a;
    std::string b;
    int order;  // what the ecosystem's documentation says
};

// Debian Policy 5.6.12: epochs first, then upstream and revision compared by
// alternating non-digit (letters before non-letters, '~' before everything,
// even the end) and numeric parts.
const std::vector<Expected> kDebianTable = {
    {"1.0~rc1", "1.0", -1},
    {"3.0.20-1~deb12u2", "3.0.22-1~deb12u2", -1},
    {"3.0.22-1~deb12u2", "3.0.22-1~deb12u3", -1},
    {"3.0.22-1~deb12u2", "3.0.22-1", -1},
    {"7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
    {"1:1.0", "2.0", 1},
    {"0:1.0", "1.0", 0},
    {"10:1", "9:2", 1},
    {"1:0.1", "0.9", 1},
    {"1.0", "1.0-0", 0},  // an absent revision equals revision "0"
    {"1.0-1", "1.0", 1},
    {"1.0~", "1.0", -1},
    {"1.0~~", "1.0~", -1},
    {"1.0~~a", "1.0~~", 1},
    {"1.0a", "1.0", 1},
    {"1.0+", "1.0", 1},
    {"1.0a", "1.0.", -1},  // letters sort before non-letters
    {"1.0a", "1.0A", 1},   // and among themselves by ASCII
    {"1.a", "1.1", 1},     // a letter against the start of a number
    {"1a", "1.0", -1},
    {"1.0a1", "1.0.1", -1},
    {"1.0-1~bpo1", "1.0-1", -1},
    {"1.0-1", "1.0-1+b1", -1},
    {"2.30-1", "2.3-1", 1},
    {"2.03", "2.3", 0},  // numeric parts compare as numbers
    {"1.2.3", "1.2.10", -1},
    {"1.0-1-2", "1.0-1-1", 1},  // the revision starts after the last hyphen
    {"2.36-9+deb12u4", "2.36-9+deb12u10", -1},
    {"1.0", "1.0", 0},
};

// rpm's own test suite (tests/rpmvercmp.at) for the segment comparison,
// plus EVR cases: the epoch counts first, a missing epoch is 0, and the
// release is compared after the version.
const std::vector<Expected> kRpmTable = {
    {"1.0", "2.0", -1},
    {"2.0.1a", "2.0.1", 1},
    {"5.5p1", "5.5p2", -1},
    {"5.5p10", "5.5p1", 1},
    {"10xyz", "10.1xyz", -1},
    {"xyz10", "xyz10.1", -1},
    {"xyz.4", "8", -1},
    {"6.0.rc1", "6.0", 1},
    {"10b2", "10a1", 1},
    {"1.0a", "1.0aa", -1},
    {"10.0001", "10.1", 0},
    {"4.999.9", "5.0", -1},
    {"2_0", "2.0", 0},
    {"1.0~rc1", "1.0", -1},
    {"1.0~rc1~git123", "1.0~rc1", -1},
    {"1.0^", "1.0", 1},
    {"1.0^git1", "1.01", -1},
    {"1.0~rc1^git1", "1.0~rc1", 1},
    {"1.0^git1~pre", "1.0^git1", -1},
    {"1:1.0-1", "2.0-1", 1},
    {"0:1.0-1", "1.0-1", 0},
    {"1.0-1", "1.0-2", -1},
    {"1.0-1.el9", "1.0-1.el9_1", -1},
    {"3.0.7-25.el9_3", "3.0.7-27.el9", -1},
    {"2:3.0.7-25.el9", "1:3.0.8-1.el9", 1},
};

std::vector<VersionPair> pairs_of(const std::vector<Expected>& table) {
    std::vector<VersionPair> pairs;
    for (const Expected& entry : table)
        pairs.emplace_back(entry.a, entry.b);
    return pairs;
}

// Versions over a small alphabet, so that random pairs often share prefixes
// and reach the interesting rules (tildes, letters against digits, epochs).
std::string random_version(std::mt19937& random, PackageFamily family) {
    const std::string alphabet = family == PackageFamily::deb ? "0129.~+ab" : "0129.~^_ab";
    auto part = [&](size_t max_length) {
        std::string text(1, "0129"[random() % 4]);
        const size_t length = random() % max_length;
        for (size_t i = 0; i < length; ++i)
            text += alphabet[random() % alphabet.size()];
        return text;
    };
    std::string version;
    if (random() % 4 == 0)
        version = std::to_string(random() % 3) + ":";
    version += part(6);
    if (random() % 2 == 0)
        version += "-" + part(4);
    return version;
}

std::vector<VersionPair> random_pairs(PackageFamily family, uint32_t seed, size_t strings) {
    std::mt19937 random(seed);
    std::vector<std::string> versions;
    for (size_t i = 0; i < strings; ++i)
        versions.push_back(random_version(random, family));
    std::vector<VersionPair> pairs;
    // Each version against a few random others, and against itself.
    for (size_t i = 0; i < versions.size(); ++i) {
        pairs.emplace_back(versions[i], versions[i]);
        for (int k = 0; k < 2; ++k)
            pairs.emplace_back(versions[i], versions[random() % versions.size()]);
    }
    return pairs;
}

void expect_agreement(PackageFamily family, const std::vector<VersionPair>& pairs,
                      const std::vector<int>& oracle, const char* oracle_name) {
    ASSERT_EQ(oracle.size(), pairs.size());
    // The generator is only useful if it reaches all three answers often,
    // not just through the comparisons of a version with itself.
    for (int answer : {-1, 0, 1}) {
        const auto count = std::count(oracle.begin(), oracle.end(), answer);
        EXPECT_GT(count, static_cast<long>(pairs.size() / 20)) << "answer " << answer;
    }
    for (size_t i = 0; i < pairs.size(); ++i) {
        const auto ours = compare_versions(family, pairs[i].first, pairs[i].second);
        ASSERT_TRUE(ours) << ours.error().message();
        EXPECT_EQ(*ours, oracle[i]) << pairs[i].first << " vs " << pairs[i].second << ": "
                                    << oracle_name << " says " << oracle[i];
    }
}

TEST(DetectDebianVersion, TableMatchesPolicyAndDpkg) {
    for (const Expected& entry : kDebianTable) {
        const auto ours = compare_versions(PackageFamily::deb, entry.a, entry.b);
        ASSERT_TRUE(ours) << ours.error().message();
        EXPECT_EQ(*ours, entry.order) << entry.a << " vs " << entry.b;
        const auto reverse = compare_versions(PackageFamily::deb, entry.b, entry.a);
        EXPECT_EQ(*reverse, -entry.order) << entry.b << " vs " << entry.a;
    }
    const auto pairs = pairs_of(kDebianTable);
    expect_agreement(PackageFamily::deb, pairs, test::dpkg_compare(pairs), "dpkg");
}

TEST(DetectDebianVersion, RandomVersionsAgreeWithDpkg) {
    const auto pairs = random_pairs(PackageFamily::deb, 20261125, 300);
    expect_agreement(PackageFamily::deb, pairs, test::dpkg_compare(pairs), "dpkg");
}

TEST(DetectDebianVersion, RejectsWhatDpkgRejects) {
    for (const char* bad : {"1.0 1", "a:1.0", ":1.0", "1:", "1.0-", "-1", "99999999999:1"}) {
        EXPECT_FALSE(check_version(PackageFamily::deb, bad)) << "'" << bad << "'";
        EXPECT_FALSE(compare_versions(PackageFamily::deb, bad, "1.0")) << "'" << bad << "'";
        // dpkg agrees that these are errors, not just warnings.
        const auto dpkg = test::run("dpkg --compare-versions " + test::quote(bad) + " lt 1.0");
        EXPECT_EQ(dpkg.exit_code, 2) << "'" << bad << "': " << dpkg.output;
    }
    // dpkg --compare-versions orders an empty version before every other, but
    // no package has one: an empty version from an image is junk, so it is
    // rejected here rather than called old.
    EXPECT_FALSE(check_version(PackageFamily::deb, ""));
    EXPECT_TRUE(check_version(PackageFamily::deb, "2:1.0-1+deb12u1"));
}

TEST(DetectRpmVersion, TableMatchesRpmDocumentationAndRpm) {
    for (const Expected& entry : kRpmTable) {
        const auto ours = compare_versions(PackageFamily::rpm, entry.a, entry.b);
        ASSERT_TRUE(ours) << ours.error().message();
        EXPECT_EQ(*ours, entry.order) << entry.a << " vs " << entry.b;
    }
    const auto pairs = pairs_of(kRpmTable);
    expect_agreement(PackageFamily::rpm, pairs, test::rpm_compare(pairs), "rpm");
}

TEST(DetectRpmVersion, RandomVersionsAgreeWithRpm) {
    const auto pairs = random_pairs(PackageFamily::rpm, 20261125, 300);
    expect_agreement(PackageFamily::rpm, pairs, test::rpm_compare(pairs), "rpm");
}

TEST(DetectRpmVersion, RejectsEmptyAndBlank) {
    EXPECT_FALSE(check_version(PackageFamily::rpm, ""));
    EXPECT_FALSE(check_version(PackageFamily::rpm, "1.0 -1"));
    EXPECT_TRUE(check_version(PackageFamily::rpm, "1:3.0.7-25.el9_3"));
}

}  // namespace
}  // namespace pv::patcher
