// Failures injected into the patch job. Each must end with exit 1 (or 3
// where nothing is to be done), a clear message, the original image
// byte-identical, and nothing left behind: no FUSE mount, no loop device.

#include <sys/mount.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

class PatchFailure : public ::testing::Test {
  protected:
    void SetUp() override {
        m_image = copy_sample(m_dir, "sample-raw", "vm.raw");
        m_sha = sha256_of_file(m_image);
        m_catalog = m_dir.file("catalog");
        std::filesystem::create_directories(m_catalog);
    }

    // Builds a package NAME VERSION (amd64) into the test catalog with the
    // given maintainer SCRIPTS ("preinst" → body).
    void add_package(const std::string& name, const std::string& version,
                     const std::map<std::string, std::string>& scripts = {}) {
        const auto root = m_dir.file("pkg-" + name + "-" + version);
        std::filesystem::create_directories(root + "/DEBIAN");
        std::ofstream(root + "/DEBIAN/control")
            << "Package: " << name << "\nVersion: " << version
            << "\nArchitecture: amd64\nMaintainer: patchvisor tests <tests@invalid>\n"
               "Description: failure injection for patchvisor\n";
        for (const auto& [script, body] : scripts) {
            std::ofstream(root + "/DEBIAN/" + script) << "#!/bin/sh\n" << body << "\n";
            std::filesystem::permissions(
                root + "/DEBIAN/" + script,
                std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                    std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                    std::filesystem::perms::others_exec);
        }
        const auto built = run("dpkg-deb --root-owner-group --build " + quote(root) + " " +
                               quote(m_catalog + "/" + name + "_" + version + "_amd64.deb"));
        ASSERT_EQ(built.exit_code, 0) << built.output;
    }

    CommandOutput patch(const std::string& extra = "") {
        return patch_job(m_image, m_catalog, m_dir.file("work"), extra);
    }

    void expect_failed_cleanly(const CommandOutput& result, const std::string& message) {
        test::expect_failed_cleanly(result, message, m_image, m_sha);
    }

    TempDir m_dir;
    std::string m_image, m_sha, m_catalog;
};

TEST_F(PatchFailure, CorruptDebFailsApplyWithDpkgsMessage) {
    add_package("libssl3", "3.0.99-1");
    // Damage the data member but keep the control member readable, so the
    // catalog accepts it and dpkg is the one to notice.
    const auto deb = m_catalog + "/libssl3_3.0.99-1_amd64.deb";
    const auto size = std::filesystem::file_size(deb);
    std::fstream file(deb, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(size) - 24);
    file << std::string(20, 'X');
    file.close();
    const auto result = patch();
    expect_failed_cleanly(result, "dpkg");
}

TEST_F(PatchFailure, FailingMaintainerScript) {
    add_package("libssl3", "3.0.99-1", {{"postinst", "echo postinst fails on purpose; exit 1"}});
    const auto result = patch("--verbose");
    expect_failed_cleanly(result, "postinst fails on purpose");
}

TEST_F(PatchFailure, SandboxTimeout) {
    add_package("libssl3", "3.0.99-1", {{"preinst", "sleep 300"}});
    const auto started = std::chrono::steady_clock::now();
    const auto result = patch("--timeout-s 4");
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(60));
    expect_failed_cleanly(result, "apply");
}

// The pid of the pv-agent that runs the `sleep MARKER` of a maintainer script.
std::string agent_running(const std::string& marker) {
    for (int attempt = 0; attempt < 200; ++attempt) {
        const auto pid = run("pgrep -f " + quote("^sleep " + marker + "$"));
        if (pid.exit_code == 0) {
            // Walk up from the sleep to the pv-agent above it.
            return run("p=" + pid.output.substr(0, pid.output.find('\n')) +
                       "; while [ \"$(cat /proc/$p/comm)\" != pv-agent ]; do "
                       "p=$(awk '/^PPid/ {print $2}' /proc/$p/status); done; echo -n $p")
                .output;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return "";
}

TEST_F(PatchFailure, AgentKilledDuringApply) {
    add_package("libssl3", "3.0.99-1", {{"preinst", "sleep 77.5"}});
    auto job = std::async(std::launch::async, [this] { return patch(); });
    const auto agent = agent_running("77.5");
    ASSERT_FALSE(agent.empty()) << "the maintainer script never ran";
    EXPECT_EQ(run("kill -9 " + agent).exit_code, 0);
    const auto result = job.get();
    expect_failed_cleanly(result, "apply");
}

TEST_F(PatchFailure, NoSpaceLeftDuringCommit) {
    std::filesystem::copy(image_artifact("catalog"), m_catalog,
                          std::filesystem::copy_options::overwrite_existing |
                              std::filesystem::copy_options::recursive);
    const auto small = m_dir.file("small");
    std::filesystem::create_directories(small);
    if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=32m") != 0)
        GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
    const auto result = patch("--output " + quote(small + "/out.raw"));
    const bool left_over = !std::filesystem::is_empty(small);
    ::umount2(small.c_str(), MNT_DETACH);
    expect_failed_cleanly(result, "No space left");
    EXPECT_FALSE(left_over) << "the partial target must be removed";
}

TEST_F(PatchFailure, ImageInUseByQemu) {
    std::filesystem::copy(image_artifact("catalog"), m_catalog,
                          std::filesystem::copy_options::overwrite_existing |
                              std::filesystem::copy_options::recursive);
    ASSERT_EQ(run("(sleep 20 2>/dev/null </dev/null | qemu-io -f raw " + quote(m_image) +
                  " >/dev/null 2>&1 & echo $! > " + quote(m_dir.file("pid")) + ")")
                  .exit_code,
              0);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto result = patch();
    EXPECT_EQ(run("kill $(cat " + quote(m_dir.file("pid")) + ")").exit_code, 0);
    expect_failed_cleanly(result, "image is in use by another process");
}

TEST_F(PatchFailure, OlderPackageInTheCatalogIsLeftAlone) {
    add_package("libssl3", "3.0.0-1");
    const auto offered = catalog_packages(m_catalog);
    ASSERT_EQ(offered.size(), 1u);
    const auto installed = installed_version(m_image, "libssl3");
    ASSERT_FALSE(installed.empty());
    ASSERT_TRUE(dpkg_version_lower(offered[0].version, installed))
        << "the test needs a catalog package older than the image's " << installed;
    const auto result = patch();
    EXPECT_EQ(result.exit_code, 3) << result.output;
    EXPECT_NE(result.output.find("nothing to do"), std::string::npos) << result.output;
    EXPECT_EQ(sha256_of_file(m_image), m_sha);
    EXPECT_EQ(installed_version(m_image, "libssl3"), installed) << "never a downgrade";
}

}  // namespace
}  // namespace pv::test
