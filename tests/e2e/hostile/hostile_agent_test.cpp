// `patchvisor patch --agent <hostile double>` on a copy of the sample image:
// whatever the agent does, the job ends with exit 1 and a clear message in
// bounded time, the original keeps its SHA-256, and the job leaves no mount,
// loop device or runtime directory (hostile_agent.cpp lists the behaviours).
// A double that says it installed the patches is believed only when the
// host reads them back from the overlay.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

using std::chrono::seconds;

class HostileAgent : public ::testing::Test {
  protected:
    void SetUp() override {
        m_image = copy_sample(m_dir, "sample-raw", "vm.raw");
        m_sha = sha256_of_file(m_image);
        m_catalog = image_artifact("catalog");
        // What the package files say, never the tool's report.
        for (const auto& package : catalog_packages(m_catalog))
            m_catalog_versions[package.name] = package.version;
        m_before = installed_version(m_image, "libssl3");
        ASSERT_EQ(installed_version(m_image, "openssl"), m_before);
    }

    // The host's verdict on PACKAGE found at FOUND.
    std::string not_as_planned(const std::string& package, const std::string& found) {
        return package + ":amd64 is at " + found + ", not " + m_catalog_versions.at(package) +
               " as planned";
    }

    static nlohmann::json read_report(const std::string& path) {
        std::ifstream in(path);
        return nlohmann::json::parse(in);
    }

    // A failed job claims no version after and no advisory fixed.
    static void expect_nothing_claimed(const nlohmann::json& report) {
        EXPECT_EQ(report.at("result"), "failed");
        EXPECT_EQ(report.at("plan").size(), 2u);
        for (const auto& package : report.at("packages"))
            EXPECT_FALSE(package.contains("after")) << package;
        EXPECT_TRUE(report.at("advisories_fixed").empty());
    }

    // Runs the job with the double named "hostile-SPEC" and times it.
    CommandOutput patch_with(const std::string& spec, const std::string& extra = "") {
        const auto agent = m_dir.file("hostile-" + spec);
        std::filesystem::create_symlink(built_binary("tests/e2e/hostile/pv-hostile-agent"), agent);
        const auto started = std::chrono::steady_clock::now();
        auto result = patch_job(m_image, m_catalog, m_dir.file("work"),
                                "--sandbox jail --agent " + quote(agent) + " " + extra);
        m_elapsed = std::chrono::steady_clock::now() - started;
        return result;
    }

    // The agent log of the job (the work directory holds one).
    std::string agent_log_path() {
        for (const auto& entry : std::filesystem::directory_iterator(m_dir.file("work")))
            if (entry.path().string().ends_with(".agent.log"))
                return entry.path().string();
        ADD_FAILURE() << "no agent log in the work directory";
        return "";
    }

    std::string agent_log() {
        std::ifstream in(agent_log_path());
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }

    void expect_failed_within(const CommandOutput& result, const std::string& message,
                              std::chrono::seconds bound) {
        expect_failed_cleanly(result, message, m_image, m_sha);
        EXPECT_LT(m_elapsed, bound) << "the job took too long against a hostile agent";
    }

    TempDir m_dir;
    std::string m_image, m_sha, m_catalog, m_before;
    std::map<std::string, std::string> m_catalog_versions;
    std::chrono::steady_clock::duration m_elapsed{};
};

// The double answers every request as the agent would, but installs
// nothing: the host reads the overlay back, finds the old versions and
// refuses the job (which it once committed on the agent's word). The
// agent's Log lines still reach the agent log named in the report.
TEST_F(HostileAgent, ADoubleThatInstallsNothingIsRefused) {
    const auto output = m_dir.file("out.raw");
    const auto report_path = m_dir.file("report.json");
    const auto result =
        patch_with("normal", "--output " + quote(output) + " --json-report " + quote(report_path));
    expect_failed_cleanly(result, not_as_planned("libssl3", m_before), m_image, m_sha);
    EXPECT_FALSE(std::filesystem::exists(output));
    const auto report = read_report(report_path);
    EXPECT_EQ(report.at("failed_phase"), "verify");
    expect_nothing_claimed(report);
    const auto log_path = report.at("sandbox").at("agent_log").get<std::string>();
    std::ifstream log_file(log_path);
    std::stringstream log;
    log << log_file.rdbuf();
    EXPECT_NE(log.str().find("hostile agent: normal"), std::string::npos) << log.str();
    EXPECT_NE(log.str().find("[stdout] Setting up libssl3"), std::string::npos) << log.str();
}

// Apply answered with success, the new versions reported, nothing written.
TEST_F(HostileAgent, LiesThatItInstalledWhatItDidNot) {
    const auto report_path = m_dir.file("report.json");
    const auto result = patch_with("lies-installed-nothing", "--json-report " + quote(report_path));
    expect_failed_cleanly(result, not_as_planned("libssl3", m_before), m_image, m_sha);
    EXPECT_NE(result.output.find(not_as_planned("openssl", m_before)), std::string::npos)
        << result.output;
    expect_nothing_claimed(read_report(report_path));
}

// Another version written into dpkg's database: the message shows the host
// read what the double wrote to the overlay.
TEST_F(HostileAgent, LiesAboutTheVersionItInstalled) {
    const auto result = patch_with("lies-other-version");
    expect_failed_cleanly(result,
                          not_as_planned("libssl3", m_catalog_versions.at("libssl3") + "+other1"),
                          m_image, m_sha);
}

// The control for the two above: the same double writing the planned
// versions passes the host's check, and the output holds them as debugfs
// and dpkg-query read them.
TEST_F(HostileAgent, ADoubleThatWritesThePlannedVersionsPasses) {
    const auto output = m_dir.file("out.raw");
    const auto report_path = m_dir.file("report.json");
    const auto result = patch_with(
        "writes-status", "--output " + quote(output) + " --json-report " + quote(report_path));
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_EQ(sha256_of_file(m_image), m_sha);
    const auto report = read_report(report_path);
    for (const auto& [name, version] : m_catalog_versions) {
        EXPECT_EQ(installed_version(output, name), version) << name;
        EXPECT_TRUE(dpkg_version_lower(m_before, version)) << name;
    }
    for (const auto& package : report.at("packages"))
        EXPECT_EQ(package.at("after"), m_catalog_versions.at(package.at("name")));
    EXPECT_FALSE(report.at("advisories_fixed").empty());
}

TEST_F(HostileAgent, OversizeFrame) {
    const auto result = patch_with("oversize");
    expect_failed_within(result, "frame length 4194305 is over the limit", seconds(60));
}

TEST_F(HostileAgent, EndlessLogsStopAtTheLogLimitAndTheLogFileIsBounded) {
    const auto result = patch_with("endless-logs@apply");
    expect_failed_within(result, "bytes of log output, the limit for one job", seconds(120));
    const auto size = std::filesystem::file_size(agent_log_path());
    EXPECT_GT(size, 1u << 20) << "the package manager's output must reach the agent log";
    EXPECT_LT(size, 20u << 20) << "the agent log must stay within the log limit";
    EXPECT_NE(agent_log().find("[stdout] endless output line 0."), std::string::npos);
}

TEST_F(HostileAgent, ReplyWithAnotherRequestsId) {
    const auto result = patch_with("out-of-order@inspect");
    expect_failed_within(result, "while waiting for request", seconds(60));
}

TEST_F(HostileAgent, UnsolicitedMessage) {
    const auto result = patch_with("unsolicited@hello");
    expect_failed_within(result, "nobody asked for", seconds(60));
}

TEST_F(HostileAgent, WrongReplyType) {
    const auto result = patch_with("wrong-reply@stage");
    expect_failed_within(result, "unexpected reply hello", seconds(60));
}

// Silent at Hello (own limit 30 s) and at Apply (900 s): the job's
// --timeout-s ends both, and the message says which deadline struck.
TEST_F(HostileAgent, SilenceAtHelloEndsAtTheJobDeadline) {
    const auto result = patch_with("silence@hello", "--timeout-s 5");
    expect_failed_within(result, "timed out waiting for the agent (the job's limit of 5 s",
                         seconds(25));
}

TEST_F(HostileAgent, SilenceAtApplyEndsAtTheJobDeadline) {
    const auto result = patch_with("silence@apply", "--timeout-s 6");
    expect_failed_within(result, "agent apply: timed out waiting for the agent", seconds(25));
}

// One byte every 100 ms of an InspectResult: the 10 s frame limit strikes
// long before the inspect phase's 120 s.
TEST_F(HostileAgent, TrickledReply) {
    const auto result = patch_with("trickle@inspect");
    expect_failed_within(result, "the agent trickles", seconds(60));
}

TEST_F(HostileAgent, HugePackageList) {
    const auto result = patch_with("huge-list@inspect");
    expect_failed_within(result, "250002 packages is over the limit of 200000", seconds(60));
}

TEST_F(HostileAgent, HugeString) {
    const auto result = patch_with("huge-string@hello");
    expect_failed_within(result, "agent_version: 3145728 bytes is over the limit", seconds(60));
}

TEST_F(HostileAgent, EarlyCloseAtFinish) {
    const auto result = patch_with("early-close@finish");
    expect_failed_within(result,
                         "agent finish: agent protocol frame: peer closed the stream; the agent "
                         "exited with status 0",
                         seconds(60));
}

}  // namespace
}  // namespace pv::test
