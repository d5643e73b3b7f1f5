// pv-agent in a jail over an RPM-capable root (make-rpm-root: the host's rpm
// in a Fedora-like layout, packages built here by rpmbuild), driven by the
// host session: RPM scriptlets start no service while the agent runs rpm,
// and the no-services guard leaves no trace in the image. Every result is
// read back from the image with tools we did not write (e2fsck, debugfs,
// rpm -q, rpm -V, sha256sum).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "jailed_agent.hpp"
#include "support.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

class AgentRpm : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string reason = jail_unavailable_reason();
        if (!reason.empty())
            GTEST_SKIP() << "jail unavailable: " << reason;
        const char* source = std::getenv("PV_SOURCE_DIR");
        ASSERT_NE(source, nullptr);
        const auto made =
            run(quote(std::string(source) + "/tests/integration/agent/make-rpm-root") + " " +
                quote(m_dir.path()) + " 2>&1");
        ASSERT_EQ(made.exit_code, 0) << made.output;
        for (const auto& package : catalog_packages(m_dir.file("rpms")))
            m_files[package.name + "-" + package.version] = package;
    }

    // The package file NAME-VERSION built by make-rpm-root, as `rpm -qp`
    // describes it.
    const PackageFile& file(const std::string& name_version) {
        static const PackageFile none;
        const auto found = m_files.find(name_version);
        if (found == m_files.end()) {
            ADD_FAILURE() << "make-rpm-root built no " << name_version;
            return none;
        }
        return found->second;
    }

    // Stages and installs FILES with the agent; returns what the package
    // manager printed. The image's version of each package must be lower
    // before, by rpm's own order.
    std::string install(const std::vector<PackageFile>& files) {
        for (const auto& package : files) {
            const auto before = installed_version(disk(), package.name);
            EXPECT_TRUE(rpm_version_lower(before, package.version))
                << package.name << " " << before << " is not older than " << package.version;
        }
        auto agent = JailedAgent::start(disk(), m_dir.path());
        EXPECT_TRUE(agent) << agent.error().message();
        if (!agent)
            return "";
        auto session = patcher::Session::from_fd(agent->take_connection());
        EXPECT_TRUE(session);
        if (!session)
            return "";
        std::string log;
        session->on_log([&log](wire::Log::Stream, const std::string& line) { log += line + "\n"; });
        const auto inventory = session->inspect();
        EXPECT_TRUE(inventory) << inventory.error().message() << agent->log();
        if (!inventory)
            return "";
        EXPECT_EQ(inventory->package_manager(), wire::PACKAGE_MANAGER_RPM);
        std::vector<std::string> names;
        for (const auto& package : files) {
            // What the agent reports is held against the image itself.
            EXPECT_EQ(version_of(*inventory, package.name),
                      installed_version(disk(), package.name));
            const auto staged = session->stage(package.path);
            EXPECT_TRUE(staged) << staged.error().message();
            names.push_back(std::filesystem::path(package.path).filename().string());
        }
        const auto applied = session->apply(names);
        EXPECT_TRUE(applied) << applied.error().message() << "\n" << log;
        EXPECT_TRUE(session->finish());
        EXPECT_EQ(agent->wait_and_detach(), 0) << agent->log();
        return log;
    }

    // The image's filesystem, checked by e2fsck and dumped by debugfs into
    // a fresh directory that must then hold the RPM database.
    std::string dump_root() {
        const auto fsck = run("e2fsck -fn " + quote(disk()) + " 2>&1");
        EXPECT_EQ(fsck.exit_code, 0) << fsck.output;
        const auto out = m_dir.file("dumped");
        std::filesystem::create_directories(out);
        const auto dumped =
            run("debugfs -R " + quote("rdump / " + out) + " " + quote(disk()) + " 2>&1");
        EXPECT_EQ(dumped.exit_code, 0) << dumped.output;
        EXPECT_GT(std::filesystem::file_size(out + "/var/lib/rpm/rpmdb.sqlite"), 0u)
            << dumped.output;
        return out;
    }

    // No stand-in nor saved original anywhere in DUMPED, and rpm -V finds
    // every file of PACKAGES as the database records it (contents, mode,
    // size; the dump does not keep modification times).
    void expect_no_trace(const std::string& dumped, const std::string& packages) {
        const auto saved = run("find " + quote(dumped) + " -name '*.pv-agent-saved'");
        EXPECT_EQ(saved.output, "") << "the guard left its saved originals";
        const auto verify = run("rpm --root " + quote(dumped) +
                                " --dbpath /var/lib/rpm -V --nomtime " + packages + " 2>/dev/null");
        EXPECT_EQ(verify.exit_code, 0) << verify.output;
        EXPECT_EQ(verify.output, "");
    }

    std::string disk() const { return m_dir.file("disk.raw"); }

    TempDir m_dir;
    std::map<std::string, PackageFile> m_files;
};

// pv-test-daemon's %post enables its service, then tries to start it five
// ways (systemctl start, /usr/bin/systemctl --no-block try-restart,
// systemctl enable --now, service restart, /sbin/service start). The
// guest's systemctl and service log each call that reaches them: only the
// two enables may, the job must still succeed, and the image must end with
// the guest's own tools, byte for byte.
TEST_F(AgentRpm, ScriptletStartsNoServiceAndTheGuardLeavesNoTrace) {
    const auto& update = file("pv-test-daemon-1.1-1");
    const auto systemctl = sha256_of_file(m_dir.file("root/usr/bin/systemctl"));
    const auto service = sha256_of_file(m_dir.file("root/usr/sbin/service"));
    const auto log = install({update});

    EXPECT_EQ(installed_version(disk(), "pv-test-daemon"), update.version);
    const auto dumped = dump_root();
    EXPECT_EQ(read_text(dumped + "/var/log/pv-test-calls"),
              "systemctl-1 enable pv-test-daemon.service\n"
              "systemctl-1 enable pv-test-daemon.service\n")
        << "a scriptlet reached the guest's systemctl or service with a start:\n"
        << log;
    EXPECT_EQ(read_text(dumped + "/usr/share/pv-test-daemon/version"), "1.1\n");
    EXPECT_EQ(sha256_of_file(dumped + "/usr/bin/systemctl"), systemctl);
    EXPECT_EQ(sha256_of_file(dumped + "/usr/sbin/service"), service);
    expect_no_trace(dumped, "pv-test-systemd pv-test-daemon");
    // The scriptlet's attempts are refused aloud, one line each.
    size_t refusals = 0;
    for (size_t at = 0;
         (at = log.find("pv-agent: refused while patching", at)) != std::string::npos; ++at)
        ++refusals;
    EXPECT_EQ(refusals, 4u) << log;
    EXPECT_NE(log.find("--now ignored"), std::string::npos) << log;
}

// An update of systemctl itself replaces the guard's stand-in during the
// transaction: the new systemctl must stay, not the guest's old one.
TEST_F(AgentRpm, AnUpdateOfSystemctlItselfIsKept) {
    const auto& update = file("pv-test-systemd-2-1");
    (void)install({update});
    EXPECT_EQ(installed_version(disk(), "pv-test-systemd"), update.version);
    const auto dumped = dump_root();
    EXPECT_NE(read_text(dumped + "/usr/bin/systemctl").find("systemctl-2 "), std::string::npos);
    expect_no_trace(dumped, "pv-test-systemd pv-test-daemon");
}

}  // namespace
}  // namespace pv::test
