// --repo with an rpm-md repository on an RPM guest, end to end in the jail:
// the repository, its updateinfo.xml and signature made by createrepo_c,
// modifyrepo_c and gpg, the guest by rpm itself (make-rpm-root --repo), the
// plan by libsolv, and the result read back from the output image with
// rpm --dbpath on the database debugfs copies out. A repository that cannot
// be trusted is refused with the original byte-identical.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/e2e/repo/repo_test_support.hpp"

namespace pv::test {
namespace {

class RpmRepo : public ::testing::Test {
  protected:
    void SetUp() override {
        const char* source = std::getenv("PV_SOURCE_DIR");
        ASSERT_NE(source, nullptr) << "ctest sets PV_SOURCE_DIR";
        const auto made =
            run(quote(std::string(source) + "/tests/integration/agent/make-rpm-root") + " " +
                quote(m_dir.file("rpm")) + " --repo 2>&1");
        ASSERT_EQ(made.exit_code, 0) << made.output;
    }

    std::string image() const { return m_dir.file("rpm/disk.raw"); }
    std::string repo() const { return m_dir.file("rpm/repo"); }

    std::string rpm_version(const std::string& package) {
        return rpm_installed_version(image(), package, m_dir.file("db"));
    }

    // A copy of the repository for a test to spoil.
    std::string repo_copy() {
        const auto copy = m_dir.file("spoilt");
        std::filesystem::copy(repo(), copy, std::filesystem::copy_options::recursive);
        return copy;
    }

    TempDir m_dir;
};

TEST_F(RpmRepo, CheckPlansTheSecurityUpdateWithItsNewDependencyAndAdvisory) {
    const auto sha = sha256_of_file(image());
    const auto run = run_repo("check", image(), repo(), m_dir);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    EXPECT_EQ(sha256_of_file(image()), sha) << "check must not write the image";
    EXPECT_EQ(run.report["result"], "missing-patches") << run.report.dump(2);
    EXPECT_EQ(run.report["package_manager"], "rpm");
    ASSERT_EQ(run.report["plan"].size(), 2u) << run.report.dump(2);

    const auto daemon = entry_named(run.report["plan"], "pv-test-daemon");
    ASSERT_TRUE(daemon.is_object()) << run.report.dump(2);
    EXPECT_EQ(daemon["action"], "upgrade");
    EXPECT_EQ(daemon["from"], "1.0-1");
    EXPECT_EQ(daemon["to"], "1.2-1");
    EXPECT_EQ(daemon["advisories"], nlohmann::json::array({"PVSA-2026:0001"}));
    EXPECT_NE(daemon["reason"].get<std::string>().find("security update (PVSA-2026:0001)"),
              std::string::npos)
        << daemon["reason"];

    const auto library = entry_named(run.report["plan"], "pv-test-libnew");
    ASSERT_TRUE(library.is_object()) << run.report.dump(2);
    EXPECT_EQ(library["action"], "install");
    EXPECT_TRUE(library["from"].is_null());
    EXPECT_EQ(library["to"], "1-1");
    EXPECT_NE(library["reason"].get<std::string>().find("new dependency of pv-test-daemon"),
              std::string::npos)
        << library["reason"];

    EXPECT_EQ(run.report["cves"], nlohmann::json::array({"CVE-2026-0001"}));
    // The bug fix is not a security update: kept back, with the reason.
    const auto systemd = entry_named(run.report["kept_back"], "pv-test-systemd");
    ASSERT_TRUE(systemd.is_object()) << run.report.dump(2);
    EXPECT_EQ(systemd["installed"], "1-1");
    EXPECT_EQ(systemd["available"], "2-1");
    EXPECT_NE(systemd["reason"].get<std::string>().find("no security advisory"), std::string::npos);
}

TEST_F(RpmRepo, FullUpgradeTakesTheBugFixToo) {
    const auto run = run_repo("check", image(), repo(), m_dir, "--upgrade full");
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    ASSERT_EQ(run.report["plan"].size(), 3u) << run.report.dump(2);
    EXPECT_EQ(entry_named(run.report["plan"], "pv-test-systemd")["to"], "2-1");
    EXPECT_EQ(entry_named(run.report["plan"], "pv-test-daemon")["to"], "1.2-1");
    EXPECT_TRUE(run.report["kept_back"].empty()) << run.report.dump(2);
}

TEST_F(RpmRepo, PatchInstallsThePlanAndRpmReadsItBack) {
    const auto run = run_repo("patch", image(), repo(), m_dir, "--sandbox jail");
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    EXPECT_EQ(run.report["result"], "patched") << run.report.dump(2);
    EXPECT_EQ(rpm_version("pv-test-daemon"), "1.2-1");
    EXPECT_EQ(rpm_version("pv-test-libnew"), "1-1");
    EXPECT_EQ(rpm_version("pv-test-systemd"), "1-1") << "a bug fix, not a security update";
    const auto fsck = ::pv::test::run("e2fsck -fn " + quote(image()));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
    EXPECT_NE(run.report["verified_from"].get<std::string>().find("rpmdb.sqlite"),
              std::string::npos)
        << run.report["verified_from"];
}

TEST_F(RpmRepo, AnUntrustedRepositoryIsRefusedWithTheOriginalByteIdentical) {
    const auto sha = sha256_of_file(image());
    struct Case {
        std::string name, arguments, message;
        std::function<void(const std::string&)> spoil;
    };
    const std::vector<Case> cases = {
        {"altered repomd.xml", "", "BAD signature",
         [](const std::string& root) {
             std::ofstream(root + "/repodata/repomd.xml", std::ios::app) << "<!-- -->\n";
         }},
        {"unsigned", "", "the repository is not signed",
         [](const std::string& root) {
             std::filesystem::remove(root + "/repodata/repomd.xml.asc");
         }},
        {"signed by a key not given", "--keyring " + quote(m_dir.file("rpm/other-key.asc")),
         "not among the keys given", [](const std::string&) {}},
        {"primary not the signed one", "", "is not the",
         [](const std::string& root) {
             for (const auto& entry : std::filesystem::directory_iterator(root + "/repodata"))
                 if (entry.path().filename().string().find("primary") != std::string::npos)
                     std::ofstream(entry.path(), std::ios::app) << "x";
         }},
    };
    for (const auto& bad : cases) {
        SCOPED_TRACE(bad.name);
        const auto spoilt = repo_copy();
        bad.spoil(spoilt);
        const auto result =
            patch_job(image(), "", m_dir.file("work"),
                      "--repo " + quote(spoilt) + " --sandbox jail " + bad.arguments);
        expect_failed_cleanly(result, bad.message, image(), sha);
        std::filesystem::remove_all(spoilt);
    }
    EXPECT_EQ(rpm_version("pv-test-daemon"), "1.0-1");
}

}  // namespace
}  // namespace pv::test
