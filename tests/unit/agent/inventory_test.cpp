// The agent's parsers of guest files (os-release, dpkg status, rpm query
// output), fed normal, odd and hostile input.

#include <gtest/gtest.h>

#include <random>

#include "agent/inventory.hpp"

namespace pv::agent {
namespace {

TEST(OsRelease, ParsesQuotedEscapedAndCommentedLines) {
    const auto fields = parse_os_release(
        "# comment\n"
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
        "ID=debian\n"
        "VERSION_ID='12'\n"
        "NAME=\"say \\\"hi\\\"\"\n"
        "  ID_LIKE = fedora  \n"
        "not a line\n"
        "bad-key=1\n"
        "=novalue\n");
    EXPECT_EQ(fields.at("PRETTY_NAME"), "Debian GNU/Linux 12 (bookworm)");
    EXPECT_EQ(fields.at("ID"), "debian");
    EXPECT_EQ(fields.at("VERSION_ID"), "12");
    EXPECT_EQ(fields.at("NAME"), "say \"hi\"");
    EXPECT_EQ(fields.at("ID_LIKE"), "fedora");
    EXPECT_EQ(fields.size(), 5u);
}

TEST(DpkgStatus, KeepsInstalledPackagesWithVersionAndArchitecture) {
    const auto packages = parse_dpkg_status(
        "Package: libssl3\n"
        "Status: install ok installed\n"
        "Priority: optional\n"
        "Architecture: amd64\n"
        "Version: 3.0.11-1~deb12u2\n"
        "Description: Secure Sockets Layer toolkit\n"
        " This package is part of the OpenSSL project.\n"
        " .\n"
        "Package: duplicate-field-is-ignored\n"
        "\n"
        "Package: removed\n"
        "Status: deinstall ok config-files\n"
        "Version: 1\n"
        "\n"
        "Package: never\n"
        "Status: purge ok not-installed\n"
        "\n\n\n"
        "Package: half\n"
        "Status: install reinstreq half-configured\n"
        "Architecture: all\n"
        "Version: 2:1.0\n");
    ASSERT_EQ(packages.size(), 2u);
    EXPECT_EQ(packages[0],
              (InstalledPackage{"libssl3", "3.0.11-1~deb12u2", "amd64", "install ok installed"}));
    EXPECT_EQ(packages[1].name, "half");
    EXPECT_EQ(packages[1].version, "2:1.0");
    EXPECT_EQ(packages[1].status, "install reinstreq half-configured");
}

TEST(DpkgStatus, HandlesCrlfMissingFieldsAndNoTrailingNewline) {
    const auto packages = parse_dpkg_status(
        "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n\r\n"
        "Status: install ok installed\nVersion: 2\n\n"
        "Package: noversion\nStatus: install ok installed\n\n"
        "Package: last\nStatus: install ok installed\nVersion: 3");
    ASSERT_EQ(packages.size(), 2u);
    EXPECT_EQ(packages[0].name, "a");
    EXPECT_EQ(packages[0].version, "1");
    EXPECT_EQ(packages[1].name, "last");
    EXPECT_EQ(packages[1].version, "3");
}

TEST(DpkgStatus, EmptyAndDegenerateInputGiveNoPackages) {
    for (std::string_view text :
         {"", "\n", ":", "::::\n\n", "Package:\n", " \t\n", "Status: install ok installed\n"}) {
        EXPECT_TRUE(parse_dpkg_status(text).empty()) << text;
    }
    EXPECT_TRUE(parse_dpkg_status(std::string_view("\0\0\0", 3)).empty());
}

TEST(DpkgStatus, SurvivesRandomAndHugeInput) {
    // Hostile guests control this file; the parser must neither crash nor
    // go quadratic. A fuzz target covers this more thoroughly.
    std::mt19937 random(1234);
    const std::string alphabet = "Package:Status Version\n \tinstalled:ok";
    for (int round = 0; round < 200; ++round) {
        std::string text(static_cast<size_t>(random() % 4096), '\0');
        for (auto& c : text)
            c = random() % 4 == 0 ? static_cast<char>(random())
                                  : alphabet[random() % alphabet.size()];
        (void)parse_dpkg_status(text);
    }
    std::string many;
    for (int i = 0; i < 100000; ++i)
        many += "Package: p" + std::to_string(i) + "\nStatus: install ok installed\nVersion: 1\n\n";
    EXPECT_EQ(parse_dpkg_status(many).size(), 100000u);
    const std::string long_line = "Package: " + std::string(10 << 20, 'x') +
                                  "\nVersion: 1\n"
                                  "Status: install ok installed\n";
    ASSERT_EQ(parse_dpkg_status(long_line).size(), 1u);
}

TEST(RpmQuery, ParsesEpochsAndSkipsMalformedLines) {
    const auto packages = parse_rpm_query(
        "openssl-libs\t1\t3.0.7-24.el9\tx86_64\n"
        "bash\t(none)\t5.1.8-6.el9\tx86_64\n"
        "gpg-pubkey\t(none)\t8483c65d-5ccc5b19\t(none)\n"
        "broken line\n"
        "\t\t\t\n");
    ASSERT_EQ(packages.size(), 3u);
    EXPECT_EQ(packages[0].version, "1:3.0.7-24.el9");
    EXPECT_EQ(packages[1].version, "5.1.8-6.el9");
    EXPECT_EQ(packages[1].architecture, "x86_64");
    EXPECT_EQ(packages[2].name, "gpg-pubkey");
}

}  // namespace
}  // namespace pv::agent
