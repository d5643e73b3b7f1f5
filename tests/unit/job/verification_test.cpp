// Verification against the plan: exactly the planned version and
// architecture, fully installed, or a sentence saying what is there.

#include <gtest/gtest.h>

#include "patcher/job/verification.hpp"

namespace pv::patcher {
namespace {

using guestfs::InstalledPackage;

guestfs::PackageDatabase database(std::vector<InstalledPackage> packages) {
    return {guestfs::DatabaseKind::Dpkg, "status", std::move(packages)};
}

InstalledPackage installed(const std::string& name, const std::string& version,
                           const std::string& architecture = "amd64",
                           const std::string& status = "install ok installed") {
    return {name, architecture, version, status, status.ends_with(" ok installed")};
}

const std::vector<ExpectedPackage> kPlan = {{"libssl3", "amd64", "3.0.22-1"},
                                            {"openssl", "amd64", "3.0.22-1"},
                                            {"ca-certificates", "all", "20230311+deb12u1"}};

TEST(Verification, EveryPlannedPackageAtItsVersionIsVerified) {
    EXPECT_TRUE(
        find_disagreements(
            kPlan, database({installed("libssl3", "3.0.22-1"), installed("openssl", "3.0.22-1"),
                             installed("zlib1g", "1.2.13"),
                             installed("ca-certificates", "20230311+deb12u1", "all")}))
            .empty());
}

TEST(Verification, EveryPackageNotAtItsPlannedVersionIsNamed) {
    const auto disagreements = find_disagreements(
        kPlan, database({installed("libssl3", "3.0.22-1"), installed("openssl", "3.0.20-1")}));
    EXPECT_EQ(disagreements,
              (std::vector<std::string>{
                  "openssl:amd64 is at 3.0.20-1, not 3.0.22-1 as planned",
                  "ca-certificates:all is not installed (the plan installs 20230311+deb12u1)"}));
}

TEST(Verification, NewerOrEquivalentIsNotThePlannedVersion) {
    const std::vector<ExpectedPackage> plan = {{"libssl3", "amd64", "3.0.22-1"}};
    EXPECT_EQ(find_disagreements(plan, database({installed("libssl3", "3.0.23-1")})).size(), 1u);
    // dpkg orders 3.0.22-1 and 3.0.22-01 as equal; the plan names one string.
    EXPECT_EQ(find_disagreements(plan, database({installed("libssl3", "3.0.22-01")})).size(), 1u);
}

TEST(Verification, AnotherArchitectureAtThePlannedVersionDoesNotCount) {
    const std::vector<ExpectedPackage> plan = {{"libssl3", "amd64", "3.0.22-1"}};
    EXPECT_EQ(find_disagreements(plan, database({installed("libssl3", "3.0.22-1", "i386")})),
              (std::vector<std::string>{
                  "libssl3:amd64 is not installed (the plan installs 3.0.22-1); the image has "
                  "libssl3:i386 3.0.22-1 (install ok installed)"}));
}

TEST(Verification, APackageNotFullyInstalledDoesNotCount) {
    const std::vector<ExpectedPackage> plan = {{"libssl3", "amd64", "3.0.22-1"}};
    EXPECT_EQ(find_disagreements(plan, database({installed("libssl3", "3.0.22-1", "amd64",
                                                           "install ok half-configured")})),
              (std::vector<std::string>{"libssl3:amd64 3.0.22-1 is not fully installed (status "
                                        "\"install ok half-configured\")"}));
    EXPECT_EQ(find_disagreements(plan, database({installed("libssl3", "3.0.22-1", "amd64",
                                                           "install reinstreq installed")}))
                  .size(),
              1u);
}

}  // namespace
}  // namespace pv::patcher
