// Detection and verification over in-memory package lists.

#include "patcher/detect/detect.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pv::patcher {
namespace {

using ::testing::HasSubstr;

PackageFile deb(std::string name, std::string version, std::string architecture = "amd64") {
    PackageFile file;
    file.path = "/catalog/" + name + "_" + version + "_" + architecture + ".deb";
    file.family = PackageFamily::deb;
    file.name = std::move(name);
    file.version = std::move(version);
    file.architecture = std::move(architecture);
    return file;
}

PackageFile rpm(std::string name, std::string version, std::string architecture) {
    PackageFile file = deb(std::move(name), std::move(version), std::move(architecture));
    file.family = PackageFamily::rpm;
    file.path += ".rpm";
    return file;
}

Detection detect_deb(const std::vector<InstalledPackage>& installed,
                     const std::vector<PackageFile>& catalog,
                     const std::vector<Advisory>& advisories = {}) {
    return detect_patches(PackageFamily::deb, installed, catalog, advisories);
}

TEST(Detection, NewerInCatalogApplies) {
    const auto detection = detect_deb({{"libssl3", "3.0.20-1~deb12u2", "amd64"}},
                                      {deb("libssl3", "3.0.22-1~deb12u2")});
    ASSERT_EQ(detection.patches.size(), 1u);
    const Patch& patch = detection.patches[0];
    EXPECT_EQ(patch.package.name, "libssl3");
    EXPECT_EQ(patch.package.version, "3.0.22-1~deb12u2");
    EXPECT_EQ(patch.installed_version, "3.0.20-1~deb12u2");
    EXPECT_EQ(patch.installed_architecture, "amd64");
    EXPECT_TRUE(detection.warnings.empty());
}

TEST(Detection, EqualVersionDoesNotApply) {
    EXPECT_TRUE(
        detect_deb({{"libssl3", "3.0.22-1~deb12u2", "amd64"}}, {deb("libssl3", "3.0.22-1~deb12u2")})
            .patches.empty());
    // Equal by Debian's rules, though spelled differently.
    EXPECT_TRUE(
        detect_deb({{"zlib1g", "0:1.2.13", "amd64"}}, {deb("zlib1g", "1.2.13")}).patches.empty());
}

TEST(Detection, OlderInCatalogNeverDowngrades) {
    EXPECT_TRUE(
        detect_deb({{"libssl3", "3.0.22-1~deb12u2", "amd64"}}, {deb("libssl3", "3.0.20-1~deb12u2")})
            .patches.empty());
    // The epoch makes the installed version newer despite its smaller number.
    EXPECT_TRUE(detect_deb({{"demo", "1:0.5", "amd64"}}, {deb("demo", "2.0")}).patches.empty());
}

TEST(Detection, OtherArchitectureDoesNotApply) {
    EXPECT_TRUE(detect_deb({{"libssl3", "3.0.20-1", "arm64"}}, {deb("libssl3", "3.0.22-1")})
                    .patches.empty());
}

TEST(Detection, ArchitectureAllMatchesAnyArchitecture) {
    const auto detection = detect_deb({{"ca-certificates", "20230311", "amd64"}},
                                      {deb("ca-certificates", "20230311+deb12u1", "all")});
    ASSERT_EQ(detection.patches.size(), 1u);
    EXPECT_EQ(detection.patches[0].package.architecture, "all");
}

TEST(Detection, PackageNotInstalledDoesNotApply) {
    EXPECT_TRUE(
        detect_deb({{"libc6", "2.36-9", "amd64"}}, {deb("openssl", "3.0.22-1")}).patches.empty());
    EXPECT_TRUE(detect_deb({}, {deb("openssl", "3.0.22-1")}).patches.empty());
}

TEST(Detection, SeveralCatalogVersionsPickTheNewest) {
    const auto detection =
        detect_deb({{"openssl", "3.0.11-1~deb12u2", "amd64"}},
                   {deb("openssl", "3.0.15-1~deb12u1"), deb("openssl", "3.0.22-1~deb12u2"),
                    deb("openssl", "3.0.17-1~deb12u1"), deb("openssl", "3.0.22-1~deb12u1")});
    ASSERT_EQ(detection.patches.size(), 1u);
    EXPECT_EQ(detection.patches[0].package.version, "3.0.22-1~deb12u2");
}

TEST(Detection, MultiarchInstancesArePatchedEachWithTheirArchitecture) {
    const auto detection =
        detect_deb({{"libssl3", "3.0.20-1", "amd64"}, {"libssl3", "3.0.20-1", "i386"}},
                   {deb("libssl3", "3.0.22-1", "amd64"), deb("libssl3", "3.0.22-1", "i386")});
    ASSERT_EQ(detection.patches.size(), 2u);
    EXPECT_EQ(detection.patches[0].package.architecture, "amd64");
    EXPECT_EQ(detection.patches[1].package.architecture, "i386");
}

TEST(Detection, OtherFamilyIsIgnored) {
    EXPECT_TRUE(
        detect_deb({{"openssl", "3.0.1-1", "x86_64"}}, {rpm("openssl", "1:3.0.7-27.el9", "x86_64")})
            .patches.empty());
}

TEST(Detection, RpmNoarchAndEpochs) {
    const std::vector<PackageFile> catalog = {rpm("python3-demo", "2.0-1.el9", "noarch"),
                                              rpm("openssl", "1:3.0.7-27.el9", "x86_64")};
    const auto detection = detect_patches(
        PackageFamily::rpm,
        {{"python3-demo", "1.9-3.el9", "noarch"}, {"openssl", "3.0.9-1.el9", "x86_64"}}, catalog,
        {});
    ASSERT_EQ(detection.patches.size(), 2u);  // the epoch 1 beats the missing (0) epoch
    EXPECT_EQ(detection.patches[0].package.name, "openssl");
    EXPECT_EQ(detection.patches[1].package.name, "python3-demo");
}

TEST(Detection, InstallOnlyPackagesCompareWithTheNewestInstance) {
    const std::vector<PackageFile> catalog = {rpm("kernel", "5.14.0-362.el9", "x86_64")};
    EXPECT_TRUE(detect_patches(PackageFamily::rpm,
                               {{"kernel", "5.14.0-300.el9", "x86_64"},
                                {"kernel", "5.14.0-362.el9", "x86_64"}},
                               catalog, {})
                    .patches.empty());
}

TEST(Detection, InvalidInstalledVersionIsLeftAloneWithAWarning) {
    const auto detection =
        detect_deb({{"libssl3", "3.0 20", "amd64"}}, {deb("libssl3", "3.0.22-1")});
    EXPECT_TRUE(detection.patches.empty());
    ASSERT_EQ(detection.warnings.size(), 1u);
    EXPECT_THAT(detection.warnings[0], HasSubstr("libssl3"));
}

TEST(Detection, AdvisoriesBetweenInstalledAndPatchVersion) {
    const std::vector<Advisory> advisories = {
        {"DSA-OLD", {"CVE-2025-1"}, {{"libssl3", "3.0.15-1~deb12u1"}}},  // already fixed
        {"DSA-NOW",
         {"CVE-2026-1", "CVE-2026-2"},
         {{"openssl", "3.0.22-1~deb12u2"}, {"libssl3", "3.0.22-1~deb12u2"}}},
        {"DSA-MID", {}, {{"libssl3", "3.0.21-1~deb12u1"}}},
        {"DSA-FUTURE", {}, {{"libssl3", "3.0.23-1~deb12u1"}}},  // the patch is not enough
        {"DSA-OTHER", {}, {{"curl", "7.88.1-10+deb12u12"}}},
    };
    const auto detection = detect_deb({{"libssl3", "3.0.20-1~deb12u2", "amd64"}},
                                      {deb("libssl3", "3.0.22-1~deb12u2")}, advisories);
    ASSERT_EQ(detection.patches.size(), 1u);
    const auto& fixed = detection.patches[0].advisories;
    ASSERT_EQ(fixed.size(), 2u);
    EXPECT_EQ(fixed[0].id, "DSA-NOW");
    EXPECT_EQ(fixed[0].cves, (std::vector<std::string>{"CVE-2026-1", "CVE-2026-2"}));
    EXPECT_EQ(fixed[0].fixed_version, "3.0.22-1~deb12u2");
    EXPECT_EQ(fixed[1].id, "DSA-MID");
}

}  // namespace
}  // namespace pv::patcher
