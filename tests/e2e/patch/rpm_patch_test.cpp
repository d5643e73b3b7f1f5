// The whole patch job on an RPM guest through the jail sandbox: an ext4
// image of a root that rpm itself initialised and installed into
// (tests/integration/agent/make-rpm-root), a folder catalog of packages
// rpmbuild made, and the result read back with rpm's own tools from the
// output image (debugfs rdump of /var/lib/rpm, then rpm --dbpath -q), not
// from patchvisor's report. The host's own read of rpm's database
// (guestfs/rpm/) is what verifies the job.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>

#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

class RpmPatchJob : public ::testing::Test {
  protected:
    void SetUp() override {
        const char* source = std::getenv("PV_SOURCE_DIR");
        ASSERT_NE(source, nullptr) << "ctest sets PV_SOURCE_DIR";
        const auto made =
            run(quote(std::string(source) + "/tests/integration/agent/make-rpm-root") + " " +
                quote(m_dir.file("rpm")) + " 2>&1");
        ASSERT_EQ(made.exit_code, 0) << made.output;
        // The updates: pv-test-systemd 2-1 and pv-test-daemon 1.1-1.
        std::filesystem::create_directories(m_catalog);
        for (const char* file :
             {"pv-test-systemd-2-1.noarch.rpm", "pv-test-daemon-1.1-1.noarch.rpm"})
            std::filesystem::copy_file(m_dir.file("rpm/rpms/") + file, m_catalog + "/" + file);
        for (const auto& package : catalog_packages(m_catalog))
            m_expected[package.name] = package.version;
        ASSERT_EQ(m_expected.size(), 2u);
    }

    std::string rpm_version(const std::string& image, const std::string& package) {
        return rpm_installed_version(image, package, m_dir.file("db"));
    }

    TempDir m_dir;
    std::string m_catalog = m_dir.file("catalog");
    std::map<std::string, std::string> m_expected;
};

TEST_F(RpmPatchJob, PatchesTheRpmGuestInTheJailAndTheHostReadsItsDatabase) {
    const auto image = m_dir.file("rpm/disk.raw");
    for (const auto& [package, version] : m_expected) {
        const auto before = rpm_version(image, package);
        ASSERT_FALSE(before.empty()) << package;
        EXPECT_TRUE(rpm_version_lower(before, version)) << package << " " << before;
    }
    const auto report_path = m_dir.file("report.json");
    const auto result = patchvisor("patch " + quote(image) + " --catalog " + quote(m_catalog) +
                                   " --work-dir " + quote(m_dir.file("work")) +
                                   " --sandbox jail --json-report " + quote(report_path));
    ASSERT_EQ(result.exit_code, 0) << result.output;
    for (const auto& [package, version] : m_expected)
        EXPECT_EQ(rpm_version(image, package), version) << package;
    const auto fsck = run("e2fsck -fn " + quote(image));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
    const auto report = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    EXPECT_EQ(report["result"], "patched");
    EXPECT_EQ(report["package_manager"], "rpm") << report.dump(2);
    EXPECT_NE(report["verified_from"].get<std::string>().find("/var/lib/rpm/rpmdb.sqlite"),
              std::string::npos)
        << report["verified_from"];
}

}  // namespace
}  // namespace pv::test
