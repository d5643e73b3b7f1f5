// The host's parse of dpkg's status file: what dpkg itself would read is
// read, and every file dpkg would refuse is an error naming the paragraph.

#include <gtest/gtest.h>

#include <string>

#include "guestfs/dpkg/dpkg_database.hpp"

namespace pv::guestfs {
namespace {

std::string paragraph(const std::string& name, const std::string& version,
                      const std::string& status = "install ok installed",
                      const std::string& architecture = "amd64") {
    return "Package: " + name + "\nStatus: " + status +
           "\nPriority: optional\nArchitecture: " + architecture + "\nVersion: " + version +
           "\nDescription: a library\n a second line\n .\n and more\n";
}

// The error of parsing TEXT, or "" when it parsed.
std::string error_of(const std::string& text) {
    const auto parsed = parse_dpkg_status(text);
    return parsed ? "" : parsed.error().message();
}

TEST(DpkgStatus, ReadsEveryListedPackageWithItsState) {
    const auto parsed =
        parse_dpkg_status(paragraph("libssl3", "3.0.20-1~deb12u2") + "\n" +
                          paragraph("openssl", "3.0.20-1~deb12u2", "install ok half-configured") +
                          "\n\n\n" + paragraph("old", "1.0", "deinstall ok config-files") + "\n" +
                          paragraph("gone", "2.0", "purge ok not-installed") + "\n" +
                          paragraph("tzdata", "2024a-0+deb12u1", "hold ok installed", "all"));
    ASSERT_TRUE(parsed) << parsed.error().message();
    ASSERT_EQ(parsed->size(), 4u);
    EXPECT_EQ((*parsed)[0], (InstalledPackage{"libssl3", "amd64", "3.0.20-1~deb12u2",
                                              "install ok installed", true}));
    EXPECT_EQ((*parsed)[1].status, "install ok half-configured");
    EXPECT_FALSE((*parsed)[1].installed);
    EXPECT_EQ((*parsed)[2].name, "old");
    EXPECT_FALSE((*parsed)[2].installed);
    EXPECT_EQ((*parsed)[3],
              (InstalledPackage{"tzdata", "all", "2024a-0+deb12u1", "hold ok installed", true}));
}

TEST(DpkgStatus, AReinstallRequiredPackageIsNotInstalled) {
    const auto parsed =
        parse_dpkg_status(paragraph("libc6", "2.36-9", "install reinstreq installed"));
    ASSERT_TRUE(parsed) << parsed.error().message();
    ASSERT_EQ(parsed->size(), 1u);
    EXPECT_FALSE((*parsed)[0].installed);
}

TEST(DpkgStatus, AnEmptyFileHasNoPackages) {
    const auto parsed = parse_dpkg_status("\n\n");
    ASSERT_TRUE(parsed);
    EXPECT_TRUE(parsed->empty());
}

TEST(DpkgStatus, FieldNamesAreCaseInsensitiveAsInDpkg) {
    const auto parsed = parse_dpkg_status(
        "package: a\nSTATUS: install ok installed\nversion: 1\narchitecture: all\n");
    ASSERT_TRUE(parsed) << parsed.error().message();
    ASSERT_EQ(parsed->size(), 1u);
    EXPECT_EQ((*parsed)[0].version, "1");
}

TEST(DpkgStatus, RefusesWhatDpkgWouldRefuse) {
    const std::string ok = paragraph("a", "1");
    struct Case {
        std::string text, message;
    };
    const Case cases[] = {
        {"Package: a\nVersion: 1\nVersion: 2\nStatus: install ok installed\n",
         "the paragraph at byte 0: the field Version appears twice"},
        {"Package: a\nversion: 1\nVersion: 2\nStatus: install ok installed\n", "appears twice"},
        // libapt-pkg would make "garbage\nVersion" one field and hide the version.
        {"Package: a\ngarbage\nVersion: 1\nStatus: install ok installed\n",
         "a line is not \"Field: value\": \"garbage\""},
        {ok + "\n continued\n", "the line at byte " + std::to_string(ok.size() + 1) +
                                    ": a continuation line outside any paragraph"},
        {"Version: 1\nStatus: install ok installed\n", "no Package field"},
        {"Package: a\nVersion: 1\n", "no Status field for a"},
        {"Package: a\nStatus: install ok\nVersion: 1\n", "is not dpkg's \"want flag state\""},
        {"Package: a\nStatus: install ok  installed\nVersion: 1\n", "want flag state"},
        {"Package: a\nStatus: install fine installed\nVersion: 1\n", "want flag state"},
        {"Package: a\nStatus: install ok configured\nVersion: 1\n", "want flag state"},
        {"Package: a\nStatus: install ok installed\n", "no Version for a, which is installed"},
        {"Package: a\nStatus: install ok installed\nVersion: 1\n more\n",
         "Version holds a byte that is not printable ASCII, or a second line"},
        {"Package: a\nStatus: install ok installed\nVersion: 1\x01\n", "not printable ASCII"},
        {"Package: a\xc3\xa9\nStatus: install ok installed\nVersion: 1\n", "not printable ASCII"},
        {"Package: a\nStatus: install ok installed\nVersion: " + std::string(513, '1') + "\n",
         "Version is 513 bytes, over the limit of 512"},
        {ok + "\n" + paragraph("b", "1") + "\n" + paragraph("a", "2"),
         "a:amd64 is listed a second time"},
    };
    for (const auto& test : cases) {
        const std::string error = error_of(test.text);
        EXPECT_NE(error.find(test.message), std::string::npos) << "input:\n"
                                                               << test.text << "\nerror: " << error;
    }
    // The same name under two architectures is multiarch, not a duplicate.
    EXPECT_EQ(error_of(ok + "\n" + paragraph("a", "1", "install ok installed", "i386")), "");
}

TEST(DpkgStatus, RefusesMoreParagraphsThanTheLimit) {
    std::string text;
    const std::string one = "Package: p\nStatus: purge ok not-installed\n\n";
    text.reserve((kMaxPackages + 1) * one.size());
    for (size_t i = 0; i <= kMaxPackages; ++i)
        text += one;
    EXPECT_NE(error_of(text).find("more than 200000 paragraphs"), std::string::npos);
}

}  // namespace
}  // namespace pv::guestfs
