// pv-agent in a jail over a copy of the sample image, driven by the host
// session: the patch flow and its corrupt-package failure.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>

#include "jailed_agent.hpp"
#include "support.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// The sample image and catalog come from scripts/images; without them the
// test fails (it must not pass silently on a machine that never built them).
// The versions expected come from the package files (dpkg-deb -f) and from
// the image itself (image-packages), never from the agent.
class AgentPatch : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string reason = jail_unavailable_reason();
        if (!reason.empty())
            GTEST_SKIP() << "jail unavailable: " << reason;
        m_sample = image_artifact("sample-raw");
        m_catalog = image_artifact("catalog");
        ASSERT_FALSE(m_sample.empty() || m_catalog.empty());
        for (const auto& package : catalog_packages(m_catalog)) {
            m_debs.push_back(package.path);
            m_fixed[package.name] = package.version;
            m_release[package.name] = installed_version(m_sample, package.name);
            EXPECT_TRUE(dpkg_version_lower(m_release[package.name], package.version))
                << package.name << ": the sample's " << m_release[package.name]
                << " is not older than the catalog's " << package.version;
        }
        ASSERT_EQ(m_debs.size(), 2u) << "catalog should hold libssl3 and openssl";
        ASSERT_EQ(run("cp --sparse=always " + quote(m_sample) + " " + quote(disk())).exit_code, 0);
    }

    std::string disk() const { return m_dir.file("disk.raw"); }

    Result<patcher::Session> connect(std::optional<JailedAgent>& agent) {
        agent.emplace(PV_TRY(JailedAgent::start(disk(), m_dir.path())));
        auto session = PV_TRY(patcher::Session::from_fd(agent->take_connection()));
        session.on_log(
            [this](wire::Log::Stream, const std::string& line) { m_log += line + "\n"; });
        return session;
    }

    // Checked with tools we did not write, on the unmounted image: the new
    // versions are recorded, and neither staging nor policy-rc.d is left over.
    void expect_image_patched() {
        for (const auto& [name, version] : m_fixed)
            EXPECT_EQ(installed_version(disk(), name), version) << name;
        const auto root = run("debugfs -R 'ls /' " + quote(disk()) + " 2>/dev/null");
        EXPECT_EQ(root.output.find("pv-agent"), std::string::npos) << root.output;
        const auto policy =
            run("debugfs -R 'stat /usr/sbin/policy-rc.d' " + quote(disk()) + " 2>&1");
        EXPECT_NE(policy.output.find("File not found"), std::string::npos) << policy.output;
    }

    TempDir m_dir;
    std::string m_sample, m_catalog, m_log;
    std::map<std::string, std::string> m_fixed, m_release;  // package → version
    std::vector<std::filesystem::path> m_debs;
};

TEST_F(AgentPatch, InstallsSecurityVersionAndLeavesCleanDatabase) {
    std::optional<JailedAgent> agent;
    auto session = connect(agent);
    ASSERT_TRUE(session) << session.error().message();
    auto hello = session->hello();
    ASSERT_TRUE(hello) << hello.error().message() << agent->log();
    EXPECT_EQ(hello->major(), proto::kProtocolMajor);
    EXPECT_EQ(hello->sandbox(), "jail");

    auto start = Clock::now();
    auto before = session->inspect();
    ASSERT_TRUE(before) << before.error().message() << agent->log();
    const double inspect_s = seconds_since(start);
    EXPECT_EQ(before->os_release().at("ID"), "debian");
    EXPECT_EQ(before->os_release().at("VERSION_CODENAME"), "bookworm");
    EXPECT_EQ(before->package_manager(), wire::PACKAGE_MANAGER_DPKG);
    for (const auto& [name, version] : m_release)
        EXPECT_EQ(version_of(*before, name), version) << name;
    EXPECT_GT(before->packages_size(), 50);

    start = Clock::now();
    std::vector<std::string> names;
    for (const auto& deb : m_debs) {
        auto staged = session->stage(deb);
        ASSERT_TRUE(staged) << staged.error().message();
        names.push_back(deb.filename().string());
    }
    const double stage_s = seconds_since(start);
    start = Clock::now();
    auto applied = session->apply(names);
    ASSERT_TRUE(applied) << applied.error().message() << "\n" << m_log;
    const double apply_s = seconds_since(start);
    EXPECT_NE(m_log.find("Setting up libssl3"), std::string::npos) << m_log;

    auto after = session->inspect();
    ASSERT_TRUE(after) << after.error().message();
    for (const auto& [name, version] : m_fixed)
        EXPECT_EQ(version_of(*after, name), version) << name;
    auto audit = session->run({"dpkg", "--audit"});
    ASSERT_TRUE(audit) << audit.error().message();
    EXPECT_EQ(audit->exit_code, 0);
    EXPECT_EQ(audit->output_tail, "");
    ASSERT_TRUE(session->finish());
    EXPECT_EQ(agent->wait_and_detach(), 0) << agent->log();

    std::cout << "durations on the sample: inspect " << inspect_s << " s, stage " << stage_s
              << " s, apply " << apply_s << " s\n";
    RecordProperty("inspect_seconds", std::to_string(inspect_s));
    RecordProperty("stage_seconds", std::to_string(stage_s));
    RecordProperty("apply_seconds", std::to_string(apply_s));

    expect_image_patched();
}

TEST_F(AgentPatch, CorruptDebFailsWithDpkgMessageAndKeepsDatabase) {
    // Half of the real package: a valid ar header, a truncated data member.
    const std::string corrupt = m_dir.file("libssl3_corrupt_amd64.deb");
    std::filesystem::path libssl3;
    for (const auto& deb : m_debs) {
        if (deb.filename().string().rfind("libssl3_", 0) == 0)
            libssl3 = deb;
    }
    ASSERT_FALSE(libssl3.empty());
    const auto size = std::filesystem::file_size(libssl3);
    std::filesystem::copy_file(libssl3, corrupt);
    std::filesystem::resize_file(corrupt, size / 2);

    std::optional<JailedAgent> agent;
    auto session = connect(agent);
    ASSERT_TRUE(session) << session.error().message();
    ASSERT_TRUE(session->hello());
    ASSERT_TRUE(session->stage(corrupt));
    auto applied = session->apply({"libssl3_corrupt_amd64.deb"});
    ASSERT_FALSE(applied) << "dpkg accepted a truncated package";
    const std::string message = applied.error().message();
    std::cout << "apply error: " << message << "\n";
    EXPECT_NE(message.find("dpkg -i exited with status"), std::string::npos) << message;
    EXPECT_NE(message.find("dpkg-deb"), std::string::npos) << message;
    EXPECT_FALSE(session->broken());

    auto after = session->inspect();
    ASSERT_TRUE(after) << after.error().message();
    for (const auto& [name, version] : m_release)
        EXPECT_EQ(version_of(*after, name), version) << name;
    auto audit = session->run({"dpkg", "--audit"});
    ASSERT_TRUE(audit) << audit.error().message();
    EXPECT_EQ(audit->output_tail, "");
    ASSERT_TRUE(session->finish());
    EXPECT_EQ(agent->wait_and_detach(), 0) << agent->log();
}

TEST_F(AgentPatch, FindsRootOnGptPartition) {
    const std::string gpt = image_artifact("sample-gpt");
    ASSERT_FALSE(gpt.empty()) << "sample-gpt missing: run `scripts/images samples`";
    ASSERT_EQ(run("cp --sparse=always " + quote(gpt) + " " + quote(disk())).exit_code, 0);
    std::optional<JailedAgent> agent;
    auto session = connect(agent);
    ASSERT_TRUE(session) << session.error().message();
    auto inventory = session->inspect();
    ASSERT_TRUE(inventory) << inventory.error().message() << agent->log();
    EXPECT_NE(inventory->root_device().find("offset 1048576"), std::string::npos)
        << inventory->root_device();
    EXPECT_EQ(inventory->filesystem(), "ext4");
    EXPECT_EQ(version_of(*inventory, "libssl3"), installed_version(gpt, "libssl3"));
    ASSERT_TRUE(session->finish());
    EXPECT_EQ(agent->wait_and_detach(), 0) << agent->log();
}

}  // namespace
}  // namespace pv::test
