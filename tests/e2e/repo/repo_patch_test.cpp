// patchvisor patch --repo on the fixture images, end to end (jail sandbox
// on hosts without hardware virtualization). Versions are read back from the
// output image with debugfs + dpkg-query (installed_version), the expected
// ones from the repository's .deb files with dpkg-deb.

#include <gtest/gtest.h>

#include "tests/e2e/repo/repo_test_support.hpp"

namespace pv::test {
namespace {

class RepoPatch : public ::testing::Test {
  protected:
    std::string copy(const std::string& fixture_image) {
        return m_fixture.copy_image(fixture_image, m_dir.file("vm.raw"));
    }

    RepoFixture m_fixture;
    TempDir m_dir;
};

TEST_F(RepoPatch, SecurityUpdateWithANewDependencyIsInstalledWithIt) {
    const auto image = copy("sample-fixture.raw");
    ASSERT_EQ(installed_version(image, "pv-fixture-tool"), "1.0");
    ASSERT_EQ(installed_version(image, "pv-fixture-newdep"), "") << "the dependency must be new";
    const auto old_ssl = installed_version(image, "libssl3");

    // No --keyring: the image's own /etc/apt/trusted.gpg.d holds the test key.
    const auto run = run_repo("patch", image, m_fixture.path("repo-good"), m_dir);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;

    for (const char* package : {"libssl3", "openssl", "pv-fixture-tool", "pv-fixture-newdep"})
        EXPECT_EQ(installed_version(image, package),
                  m_fixture.pool_version("bookworm-security", package))
            << package;
    EXPECT_TRUE(dpkg_version_lower(old_ssl, installed_version(image, "libssl3")));
    const auto fsck = ::pv::test::run("e2fsck -fn " + quote(image));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;

    EXPECT_EQ(run.report["result"], "patched");
    const auto dependency = entry_named(run.report["packages"], "pv-fixture-newdep");
    ASSERT_TRUE(dependency.is_object()) << run.report.dump(2);
    EXPECT_EQ(dependency["action"], "install");
    EXPECT_TRUE(dependency["before"].is_null());
    EXPECT_NE(dependency["reason"].get<std::string>().find("new dependency of pv-fixture-tool"),
              std::string::npos);
    // apt's unpack order: the dependency before the package that needs it.
    std::vector<std::string> order;
    for (const auto& change : run.report["packages"])
        order.push_back(change["name"]);
    const auto position = [&](const std::string& name) {
        return std::find(order.begin(), order.end(), name) - order.begin();
    };
    EXPECT_LT(position("pv-fixture-newdep"), position("pv-fixture-tool"));
}

TEST_F(RepoPatch, PlainSampleWithAGivenKeyring) {
    const auto sample = copy_sample(m_dir, "sample-raw", "plain.raw");
    const auto run = run_repo("patch", sample, m_fixture.path("repo-good"), m_dir,
                              "--keyring " + quote(m_fixture.path("keys/test-key.asc")));
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    for (const char* package : {"libssl3", "openssl"})
        EXPECT_EQ(installed_version(sample, package),
                  m_fixture.pool_version("bookworm-security", package))
            << package;
    EXPECT_EQ(installed_version(sample, "pv-fixture-tool"), "") << "nothing new unless needed";
    EXPECT_EQ(installed_version(sample, "pv-fixture-newdep"), "");
}

TEST_F(RepoPatch, HeldPackageIsKeptBackAndThePinHonoured) {
    const auto image = copy("sample-held.raw");
    const auto old_openssl = installed_version(image, "openssl");
    const auto run = run_repo("patch", image, m_fixture.path("repo-good"), m_dir);
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    EXPECT_EQ(installed_version(image, "libssl3"),
              m_fixture.pool_version("bookworm-security", "libssl3"));
    EXPECT_EQ(installed_version(image, "openssl"), old_openssl) << "openssl is held";
    EXPECT_EQ(installed_version(image, "pv-fixture-tool"), "1.0") << "1.1 is pinned to -1";
    EXPECT_EQ(installed_version(image, "pv-fixture-newdep"), "");
    const auto kept = entry_named(run.report["kept_back"], "openssl");
    ASSERT_TRUE(kept.is_object()) << run.report.dump(2);
    EXPECT_EQ(kept["reason"], "held (dpkg selection hold)");
}

TEST_F(RepoPatch, ExpiredReleaseIsRefusedUnlessOverridden) {
    const auto image = copy("sample-fixture.raw");
    const auto sha = sha256_of_file(image);
    const auto refused =
        patch_job(image, "", m_dir.file("work"), "--repo " + quote(m_fixture.path("repo-expired")));
    expect_failed_cleanly(refused, "is expired", image, sha);

    const auto run =
        run_repo("patch", image, m_fixture.path("repo-expired"), m_dir, "--ignore-valid-until");
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    for (const char* package : {"pv-fixture-tool", "pv-fixture-newdep"})
        EXPECT_EQ(installed_version(image, package),
                  m_fixture.pool_version("bookworm-security", package))
            << package;
}

}  // namespace
}  // namespace pv::test
