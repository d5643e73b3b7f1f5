// patchvisor gc never touches what belongs to a running process, and
// removes what a dead one left: job records judged by pid + start time +
// boot id (a reused pid is not the owner), runtime directories by pid and
// start time, and a gc racing a real job leaves the job whole.

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "patcher/job/job_record.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

namespace fs = std::filesystem;

// A pid that no process has now: a child that has exited and been reaped.
int dead_pid() {
    const int pid = ::fork();
    if (pid == 0)
        ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    return pid;
}

void touch(const std::string& path) {
    std::ofstream(path) << "x";
}

class Gc : public ::testing::Test {
  protected:
    void SetUp() override {
        fs::create_directories(m_work);
        fs::create_directories(m_root);
        m_self = *patcher::current_process_identity();
    }

    // A job record of OWNER in the work dir with its overlay and a temp
    // target next to its target; returns the stem.
    std::string add_job(const std::string& name, const patcher::ProcessIdentity& owner) {
        const auto stem = m_work + "/" + name;
        const auto target = m_dir.file(name + ".raw");
        patcher::JobRecord record{owner, target, target, stem + ".overlay.qcow2"};
        EXPECT_TRUE(patcher::write_job_record(stem + patcher::kJobRecordSuffix, record));
        touch(record.overlay);
        touch(patcher::temp_target_prefix(target) + "abc123");
        return stem;
    }

    nlohmann::json gc(const std::string& flags = "") {
        const auto result = run(quote(built_binary("patcher/cli/patchvisor")) + " gc --json " +
                                flags + " --work-dir " + quote(m_work) + " --runtime-root " +
                                quote(m_root) + " 2>/dev/null | cat");
        auto json = nlohmann::json::parse(result.output, nullptr, false);
        EXPECT_FALSE(json.is_discarded()) << result.output;
        return json;
    }

    TempDir m_dir;
    std::string m_work = m_dir.file("work");
    std::string m_root = m_dir.file("run");
    patcher::ProcessIdentity m_self;
};

TEST_F(Gc, RemovesDeadJobsAndKeepsLiveOnesEvenWhenThePidIsReused) {
    const auto live = add_job("live", m_self);
    auto reused = m_self;  // our pid, but another start time: not us
    reused.start_ticks += 1;
    const auto impostor = add_job("reused", reused);
    auto gone = m_self;
    gone.pid = dead_pid();
    const auto dead = add_job("dead", gone);
    auto rebooted = m_self;
    rebooted.boot_id = "00000000-0000-0000-0000-000000000000";
    const auto old_boot = add_job("old-boot", rebooted);

    const auto dry = gc("--dry-run");
    EXPECT_EQ(dry["stale"].size(), 9u) << dry.dump(2);
    EXPECT_TRUE(fs::exists(dead + ".overlay.qcow2")) << "--dry-run removes nothing";

    const auto report = gc();
    EXPECT_TRUE(report["failed"].empty()) << report.dump(2);
    EXPECT_TRUE(fs::exists(live + ".job.json"));
    EXPECT_TRUE(fs::exists(live + ".overlay.qcow2"));
    EXPECT_TRUE(fs::exists(patcher::temp_target_prefix(m_dir.file("live.raw")) + "abc123"));
    for (const auto& stem : {impostor, dead, old_boot}) {
        EXPECT_FALSE(fs::exists(stem + ".job.json")) << stem;
        EXPECT_FALSE(fs::exists(stem + ".overlay.qcow2")) << stem;
        const auto name = fs::path(stem).filename().string();
        EXPECT_FALSE(fs::exists(patcher::temp_target_prefix(m_dir.file(name + ".raw")) + "abc123"))
            << stem;
    }
}

TEST_F(Gc, KeepsATempTargetSomeProcessHoldsOpen) {
    auto gone = m_self;
    gone.pid = dead_pid();
    add_job("dead", gone);
    const auto temp = patcher::temp_target_prefix(m_dir.file("dead.raw")) + "abc123";
    std::ifstream held(temp);  // this test process holds it, as a writer would
    gc();
    EXPECT_TRUE(fs::exists(temp));
    EXPECT_TRUE(fs::exists(m_work + "/dead.job.json")) << "kept: it names the temp file";
    held.close();
    gc();
    EXPECT_FALSE(fs::exists(temp));
}

TEST_F(Gc, RemovesRuntimeDirsOfDeadPidsOnly) {
    const auto live = m_root + "/" + std::to_string(::getpid()) + "-7";
    const auto dead = m_root + "/" + std::to_string(dead_pid()) + "-0";
    for (const auto& dir : {live, dead}) {
        fs::create_directories(dir + "/export");
        touch(dir + "/agent.sock");
    }
    fs::create_directories(m_root + "/not-a-tag");
    const auto report = gc();
    EXPECT_TRUE(report["failed"].empty()) << report.dump(2);
    EXPECT_TRUE(fs::exists(live + "/agent.sock"));
    EXPECT_FALSE(fs::exists(dead));
    EXPECT_TRUE(fs::exists(m_root + "/not-a-tag")) << "only <pid>-<n> names are ours";
}

// gc over and over while a real job runs (default runtime root, the job's
// work dir): the job must still patch its image, and gc must name the job
// as live and remove nothing of its pid.
TEST_F(Gc, RacingARealJobLeavesItWhole) {
    const auto image = copy_sample(m_dir, "sample-raw", "image.raw");
    const auto offered = catalog_packages(image_artifact("catalog"));
    for (const auto& package : offered)
        ASSERT_TRUE(dpkg_version_lower(installed_version(image, package.name), package.version))
            << package.name;
    const auto patchvisor = quote(built_binary("patcher/cli/patchvisor"));
    const auto script = patchvisor + " patch " + quote(image) + " --catalog " +
                        quote(image_artifact("catalog")) + " --sandbox jail --work-dir " +
                        quote(m_work) + " >" + quote(m_dir.file("job.log")) +
                        " 2>&1 & job=$!; echo pid=$job; while kill -0 $job 2>/dev/null; do " +
                        patchvisor + " gc --json --work-dir " + quote(m_work) + " >>" +
                        quote(m_dir.file("gc.log")) + "; sleep 0.05; done; wait $job; echo exit=$?";
    const auto result = run("sh -c " + quote(script));
    std::ifstream job_log(m_dir.file("job.log"));
    const std::string job_text((std::istreambuf_iterator<char>(job_log)), {});
    ASSERT_NE(result.output.find("exit=0"), std::string::npos) << result.output << job_text;
    const auto pid = result.output.substr(4, result.output.find('\n') - 4);
    std::ifstream gc_log(m_dir.file("gc.log"));
    unsigned runs = 0, saw_live = 0;
    for (std::string line; std::getline(gc_log, line); ++runs) {
        const auto report = nlohmann::json::parse(line, nullptr, false);
        ASSERT_FALSE(report.is_discarded()) << line;
        for (const auto& item : report["removed"]) {
            const auto path = item["path"].get<std::string>();
            EXPECT_TRUE(path.find("/" + pid + "-") == std::string::npos &&
                        path.find("-" + pid + "-") == std::string::npos)
                << "gc removed something of the running job: " << item.dump();
        }
        saw_live += report["live"].dump().find("pid " + pid + " runs") != std::string::npos;
    }
    EXPECT_GT(runs, 3u) << "gc must have raced the job a few times";
    EXPECT_GT(saw_live, 0u) << "gc never saw the job as live";
    for (const auto& package : offered)
        EXPECT_EQ(installed_version(image, package.name), package.version) << job_text;
}

}  // namespace
}  // namespace pv::test
