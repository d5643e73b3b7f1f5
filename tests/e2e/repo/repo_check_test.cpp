// patchvisor check --repo: the exact plan (install / upgrade / keep-back
// with the reason) in text and JSON, the security-only rule, and the CVEs
// each planned update fixes. check writes nothing: the image's SHA-256 is
// compared before and after.

#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "tests/e2e/repo/repo_test_support.hpp"

namespace pv::test {
namespace {

class RepoCheck : public ::testing::Test {
  protected:
    // On a copy: a job locks its image, and checks run in parallel.
    RepoRun check(const std::string& image, const std::string& arguments = "") {
        const auto path = m_dir.file(image);
        if (!std::filesystem::exists(path))
            m_fixture.copy_image(image, path);
        const auto sha = sha256_of_file(path);
        auto run = run_repo("check", path, m_fixture.path("repo-good"), m_dir, arguments);
        EXPECT_EQ(sha256_of_file(path), sha) << "check must not write the image";
        return run;
    }

    static void expect_line(const CommandOutput& output, const std::string& line) {
        EXPECT_NE(output.output.find(line), std::string::npos)
            << "no line with '" << line << "' in:\n"
            << output.output;
    }

    static std::set<std::string> strings(const nlohmann::json& list) {
        std::set<std::string> values;
        for (const auto& value : list)
            values.insert(value.get<std::string>());
        return values;
    }

    RepoFixture m_fixture;
    TempDir m_dir;
};

TEST_F(RepoCheck, PrintsThePlanWithTheNewDependency) {
    const auto before = installed_version(m_fixture.path("sample-fixture.raw"), "libssl3");
    const auto ssl = m_fixture.pool_version("bookworm-security", "libssl3");
    const auto run = check("sample-fixture.raw");
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    expect_line(run.result, "upgrade   libssl3:amd64 " + before + " -> " + ssl +
                                "  security update from bookworm-security");
    expect_line(run.result,
                "install   pv-fixture-newdep:amd64 (none) -> 1.0  new dependency of "
                "pv-fixture-tool (Depends: pv-fixture-newdep (>= 1.0))");
    expect_line(run.result, "upgrade   pv-fixture-tool:all 1.0 -> " +
                                m_fixture.pool_version("bookworm-security", "pv-fixture-tool"));

    EXPECT_EQ(run.report["result"], "missing-patches");
    ASSERT_EQ(run.report["plan"].size(), 4u) << run.report.dump(2);
    const auto ssl_entry = entry_named(run.report["plan"], "libssl3");
    EXPECT_EQ(ssl_entry["action"], "upgrade");
    EXPECT_EQ(ssl_entry["from"], before);
    EXPECT_EQ(ssl_entry["to"], ssl);
    EXPECT_EQ(ssl_entry["architecture"], "amd64");
    EXPECT_TRUE(run.report["kept_back"].empty());
}

TEST_F(RepoCheck, HeldAndPinnedPackagesAreKeptBackWithTheReason) {
    const auto image = m_fixture.path("sample-held.raw");
    const auto openssl = installed_version(image, "openssl");
    const auto run = check("sample-held.raw");
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    expect_line(run.result, "keep-back openssl:amd64 " + openssl + " (" +
                                m_fixture.pool_version("bookworm-security", "openssl") +
                                " available)  held (dpkg selection hold)");
    ASSERT_EQ(run.report["plan"].size(), 1u) << run.report.dump(2);
    EXPECT_EQ(run.report["plan"][0]["name"], "libssl3");
    const auto tool = entry_named(run.report["kept_back"], "pv-fixture-tool");
    ASSERT_TRUE(tool.is_object()) << run.report.dump(2);
    EXPECT_EQ(tool["action"], "keep-back");
    const std::string reason = tool["reason"];
    EXPECT_NE(reason.find("1.1 is pinned away (Pin-Priority -1)"), std::string::npos) << reason;
    EXPECT_NE(reason.find("(bookworm-updates) is not a security update"), std::string::npos)
        << reason;
}

TEST_F(RepoCheck, FullUpgradeTakesTheNonSecuritySuiteToo) {
    const auto security = check("sample-fixture.raw");
    ASSERT_EQ(security.result.exit_code, 0) << security.result.output;
    EXPECT_EQ(entry_named(security.report["plan"], "pv-fixture-tool")["to"],
              m_fixture.pool_version("bookworm-security", "pv-fixture-tool"));

    const auto full = check("sample-fixture.raw", "--upgrade full");
    ASSERT_EQ(full.result.exit_code, 0) << full.result.output;
    const auto tool = entry_named(full.report["plan"], "pv-fixture-tool");
    EXPECT_EQ(tool["to"], m_fixture.pool_version("bookworm-updates", "pv-fixture-tool"));
    EXPECT_EQ(tool["reason"], "update from bookworm-updates");

    // Only the suite asked for: the security one, whatever the mode.
    const auto one_suite = check("sample-fixture.raw", "--upgrade full --suite bookworm-security");
    ASSERT_EQ(one_suite.result.exit_code, 0) << one_suite.result.output;
    EXPECT_EQ(entry_named(one_suite.report["plan"], "pv-fixture-tool")["to"],
              m_fixture.pool_version("bookworm-security", "pv-fixture-tool"));

    const auto missing = check("sample-fixture.raw", "--suite trixie-security");
    EXPECT_EQ(missing.result.exit_code, 1);
    expect_line(missing.result, "the repository has no dists/trixie-security/InRelease or Release");
}

TEST_F(RepoCheck, TrackerAdvisoriesListTheResolvedCves) {
    const auto tracker = nlohmann::json::parse(
        ::pv::test::run("cat " + quote(m_fixture.path("advisories/tracker.json"))).output);
    std::set<std::string> expected{"CVE-2099-9001"};
    for (const auto& [cve, issue] : tracker["openssl"].items())
        if (issue["releases"]["bookworm"]["status"] == "resolved")
            expected.insert(cve);
    ASSERT_GT(expected.size(), 1u);
    const auto run = check("sample-fixture.raw",
                           "--advisories " + quote(m_fixture.path("advisories/tracker.json")));
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    EXPECT_EQ(strings(run.report["cves"]), expected);
    const auto openssl_advisory =
        "DEB-openssl-" + m_fixture.pool_version("bookworm-security", "openssl");
    EXPECT_EQ(strings(entry_named(run.report["plan"], "libssl3")["advisories"]),
              std::set<std::string>{openssl_advisory});
    EXPECT_TRUE(entry_named(run.report["plan"], "pv-fixture-newdep")["advisories"].empty());
}

TEST_F(RepoCheck, OsvAdvisoriesNameTheirRecords) {
    const auto run =
        check("sample-fixture.raw", "--advisories " + quote(m_fixture.path("advisories/osv.json")));
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    std::set<std::string> ids;
    for (const auto& advisory : run.report["advisories"])
        ids.insert(advisory["id"].get<std::string>());
    // PV-TEST-0003 is for Debian:11, not this bookworm guest.
    EXPECT_EQ(ids, (std::set<std::string>{"PV-TEST-0001", "PV-TEST-0002"}));
    EXPECT_EQ(strings(entry_named(run.report["plan"], "pv-fixture-tool")["advisories"]),
              std::set<std::string>{"PV-TEST-0002"});
    EXPECT_EQ(strings(run.report["cves"]).count("CVE-2099-9003"), 0u);
    EXPECT_EQ(strings(run.report["cves"]).count("CVE-2099-9001"), 1u);
}

TEST_F(RepoCheck, ChangelogFallbackListsTheCvesSinceTheInstalledVersion) {
    // The oracle: the changelog entries above the installed version's own,
    // cut with sed from the .deb that dpkg-deb unpacks.
    const auto installed = installed_version(m_fixture.path("sample-fixture.raw"), "libssl3");
    const auto oracle =
        ::pv::test::run("dpkg-deb --fsys-tarfile " +
                        m_fixture.path("repo-good/pool/bookworm-security/main/libssl3/*.deb") +
                        " | tar -xO ./usr/share/doc/libssl3/changelog.Debian.gz | zcat | sed -n " +
                        quote("1,/^openssl (" + installed + ")/p") +
                        " | grep -oE 'CVE-[0-9]{4}-[0-9]{4,}' | sort -u");
    ASSERT_EQ(oracle.exit_code, 0) << oracle.output;
    std::set<std::string> expected{"CVE-2099-9001"};
    for (size_t at = 0, end; (end = oracle.output.find('\n', at)) != std::string::npos;
         at = end + 1)
        expected.insert(oracle.output.substr(at, end - at));
    ASSERT_GT(expected.size(), 1u);
    const auto run = check("sample-fixture.raw");
    ASSERT_EQ(run.result.exit_code, 0) << run.result.output;
    EXPECT_EQ(strings(run.report["cves"]), expected);
}

}  // namespace
}  // namespace pv::test
