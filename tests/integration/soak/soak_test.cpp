// Soak: sequential jail patch jobs, and microVM runs of the test
// guest, each in this one long-lived process, sampling its open fds,
// threads and RSS at the start, after the first (warm-up) run, every tenth
// of the runs and at the end. Fds and threads may not grow at all after the
// warm-up; RSS by at most the tolerance below (allocator noise).
//
// PV_SOAK_JOBS (default 4) and PV_SOAK_VMS (default 20) set the counts;
// scripts/soak runs 200 of each.

#include <malloc.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "patcher/job/job.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"
#include "tests/integration/soak/process_sample.hpp"
#include "vmm/micro_vm.hpp"

namespace pv::test {
namespace {

constexpr uint64_t kRssToleranceKib = 4096;

unsigned count_from(const char* variable, unsigned fallback) {
    const char* text = std::getenv(variable);
    return text != nullptr ? static_cast<unsigned>(std::stoul(text)) : fallback;
}

class QuietObserver final : public patcher::JobObserver {};

TEST(Soak, SequentialJailJobsInOneProcess) {
    TempDir dir;
    patcher::JobOptions options;
    options.mode = patcher::JobMode::Patch;
    options.image = copy_sample(dir, "sample-raw", "original.raw");
    options.catalog = image_artifact("catalog");
    options.sandbox = sandbox::SandboxRequest::Jail;
    options.output = dir.file("patched.raw");
    options.timeout = std::chrono::seconds(600);
    options.work_dir = dir.file("work");
    options.agent_path = built_binary("agent/pv-agent");
    const unsigned jobs = count_from("PV_SOAK_JOBS", 4);
    // Each job starts and ends a handful of threads, and glibc gives new
    // threads their own malloc arenas (up to 8 per core) that keep freed
    // memory: with default arenas the RSS climbs in ~6 MiB steps for the
    // first jobs and then levels off, which a short run cannot tell from a
    // leak. One arena makes any leak show as growth from the first job on.
    ::mallopt(M_ARENA_MAX, 1);
    SoakLog log("jail jobs", jobs, kRssToleranceKib);
    log.after(0);
    for (unsigned job = 1; job <= jobs; ++job) {
        QuietObserver observer;
        const auto report = patcher::run_job(options, observer);
        ASSERT_EQ(report.result, patcher::JobResult::Patched)
            << "job " << job << ": " << report.error;
        // The original is only read; each job writes and we drop a new output.
        std::filesystem::remove(*options.output);
        std::filesystem::remove(report.agent_log);
        log.after(job);
    }
    EXPECT_EQ(log.growth(), "");
    EXPECT_TRUE(std::filesystem::is_empty(options.work_dir)) << "a job left files behind";
}

TEST(Soak, MicroVmRunsInOneProcess) {
    if (!std::filesystem::exists("/dev/kvm"))
        GTEST_SKIP() << "/dev/kvm is absent: cannot run a microVM";
    vmm::VmConfig config;
    config.kernel_path = built_binary("images/testguest/testguest.elf");
    config.cmdline = "testguest.quick";
    config.memory_mib = 64;
    config.timeout = std::chrono::seconds(30);
    const unsigned runs = count_from("PV_SOAK_VMS", 20);
    SoakLog log("microVM runs", runs, kRssToleranceKib);
    log.after(0);
    for (unsigned run = 1; run <= runs; ++run) {
        auto vm = vmm::MicroVm::create(config);
        ASSERT_TRUE(vm) << vm.error().message();
        const auto summary = (*vm)->run();
        ASSERT_TRUE(summary) << summary.error().message();
        ASSERT_EQ(summary->reason, vmm::ExitReason::Reset)
            << "run " << run << ": " << summary->detail;
        vm->reset();
        log.after(run);
    }
    EXPECT_EQ(log.growth(), "");
}

}  // namespace
}  // namespace pv::test
