// The crash matrix (issue 7): `patchvisor patch` SIGKILLed at every phase
// boundary and at random moments, on copies of the sample raw and qcow2
// images. After each kill the original must be byte-identical (SHA-256) or
// wholly replaced by a verified patched image (qemu-img check clean, e2fsck
// clean, the catalog's versions read back with debugfs + dpkg-query), never
// anything in between; then `patchvisor gc` must leave nothing of the killed
// run: no mount, loop device or runtime directory of its pid, no temp
// target next to the image, no overlay or job record in the work directory.
//
// PV_CRASH_TRIALS (default 12) trials; PV_CRASH_SEED fixes the random
// moments. scripts/crash-matrix N runs this with N trials.

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/crash_matrix/killed_job.hpp"
#include "tests/e2e/crash_matrix/sparse_hash.hpp"
#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

// Phase boundaries in the order the trials visit them: the ones around the
// writes first, so a short run still covers them.
const std::vector<std::string> kBoundaries = {"commit",  "apply",   "overlay", "start",  "stage",
                                              "sandbox", "finish",  "lock",    "verify", "inspect",
                                              "hello",   "catalog", "detect"};

struct Sample {
    std::string format;  // "raw" or "qcow2"
    std::string pristine;
    std::string pristine_sha;
    std::string copy;    // the image the trials patch
    double seconds = 0;  // one whole job, measured first
};

unsigned trial_count() {
    const char* text = std::getenv("PV_CRASH_TRIALS");
    return text != nullptr ? static_cast<unsigned>(std::stoul(text)) : 12;
}

class CrashMatrix : public ::testing::Test {
  protected:
    void SetUp() override {
        m_catalog = image_artifact("catalog");
        m_work = m_dir.file("work");
        for (const auto& package : {"libssl3", "openssl"}) {
            const auto version = run("ls " + quote(m_catalog) + " | sed -n " +
                                     quote("s/^" + std::string(package) + "_\\([^_]*\\)_.*/\\1/p"));
            m_expected[package] = version.output.substr(0, version.output.find('\n'));
            ASSERT_FALSE(m_expected[package].empty()) << package;
        }
        for (const auto& format : {"raw", "qcow2"}) {
            Sample sample{format, image_artifact(std::string("sample-") + format), "", "", 0};
            sample.pristine_sha = sparse_sha256(sample.pristine);
            ASSERT_EQ(sample.pristine_sha, sha256_of_file(sample.pristine))
                << "the sparse-aware hash must agree with the plain one";
            sample.copy = m_dir.file(std::string("image.") + format);
            m_samples.push_back(sample);
        }
    }

    std::vector<std::string> patch_command(const Sample& sample) const {
        return {built_binary("patcher/cli/patchvisor"),
                "patch",
                sample.copy,
                "--catalog",
                m_catalog,
                "--json",
                "--sandbox",
                "jail",
                "--work-dir",
                m_work};
    }

    void restore(const Sample& sample) {
        must("cp --sparse=always " + quote(sample.pristine) + " " + quote(sample.copy));
    }

    // "replaced" if SAMPLE's copy is a verified patched image, else why not.
    std::string verify_patched(const Sample& sample) {
        if (sample.format == "qcow2") {
            const auto check = run("qemu-img check " + quote(sample.copy));
            if (check.exit_code != 0)
                return "qemu-img check: " + check.output;
        } else {
            const auto fsck = run("e2fsck -fn " + quote(sample.copy) + " 2>&1");
            if (fsck.exit_code != 0)
                return "e2fsck: " + fsck.output;
        }
        for (const auto& [package, version] : m_expected) {
            const auto installed = installed_version(sample.copy, package);
            if (installed != version)
                return fmt::format("{} is '{}', not {}", package, installed, version);
        }
        return "replaced";
    }

    // What of the run of PID is still there; "" when nothing.
    std::string leftovers_of(int pid, const Sample& sample) const {
        namespace fs = std::filesystem;
        const auto tag = "/run/patchvisor/" + std::to_string(pid) + "-";
        std::string found;
        std::ifstream mounts("/proc/self/mountinfo");
        for (std::string line; std::getline(mounts, line);)
            if (line.find(tag) != std::string::npos)
                found += "mount: " + line + "\n";
        std::error_code error;
        for (const auto& entry : fs::directory_iterator("/sys/block", error)) {
            std::ifstream backing(entry.path() / "loop/backing_file");
            std::string file;
            if (std::getline(backing, file) && file.starts_with(tag))
                found += "loop device: " + entry.path().filename().string() + " " + file + "\n";
        }
        const auto temp_prefix = "." + fs::path(sample.copy).filename().string() + ".pv-tmp-";
        for (const auto& [directory, prefix] : std::vector<std::pair<std::string, std::string>>{
                 {"/run/patchvisor", fs::path(tag).filename().string()},
                 {m_dir.path(), temp_prefix}}) {
            for (const auto& entry : fs::directory_iterator(directory, error))
                if (entry.path().filename().string().starts_with(prefix))
                    found += "left: " + entry.path().string() + "\n";
        }
        for (const auto& entry : fs::directory_iterator(m_work, error)) {
            const auto name = entry.path().filename().string();
            if (name.ends_with(".overlay.qcow2") || name.ends_with(".job.json"))
                found += "work dir: " + name + "\n";
        }
        return found;
    }

    // Runs patchvisor gc and tallies what it removed.
    void run_gc() {
        const auto gc = run(quote(built_binary("patcher/cli/patchvisor")) +
                            " gc --json --work-dir " + quote(m_work) + " 2>/dev/null | cat");
        const auto report = nlohmann::json::parse(gc.output, nullptr, false);
        if (!report.is_discarded())
            for (const auto& item : report.value("removed", nlohmann::json::array()))
                ++m_removed[item.value("kind", "?")];
    }

    // Runs gc (again, up to three times, if the kernel is still tearing the
    // killed run down) and tallies what it removed; false if leftovers stay.
    bool collect_garbage(int pid, const Sample& sample, std::string& leftovers) {
        for (int attempt = 1; attempt <= 3; ++attempt) {
            run_gc();
            leftovers = leftovers_of(pid, sample);
            if (leftovers.empty()) {
                ++m_gc_runs[attempt];
                return true;
            }
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
        return false;
    }

    TempDir m_dir;
    std::string m_catalog, m_work;
    std::map<std::string, std::string> m_expected;
    std::vector<Sample> m_samples;
    std::map<std::string, std::map<std::string, unsigned>> m_table;  // point → outcome → count
    std::map<std::string, unsigned> m_removed;                       // gc: kind → count
    std::map<int, unsigned> m_gc_runs;                               // gc runs needed → trials
    unsigned m_stuck = 0;  // killed jobs that hung in exit until gc freed them
};

TEST_F(CrashMatrix, OriginalIsUntouchedOrWhollyReplacedAndGcLeavesNothing) {
    // One whole job per format: the time scale of the random moments, and
    // proof that the verification accepts a real patched image.
    for (auto& sample : m_samples) {
        restore(sample);
        const auto job = run_and_kill(patch_command(sample), {"", std::chrono::hours(1)});
        ASSERT_EQ(job.exit_code, 0) << job.stderr_text;
        sample.seconds = job.elapsed.count();
        ASSERT_EQ(verify_patched(sample), "replaced");
        restore(sample);
    }
    const auto seed = std::getenv("PV_CRASH_SEED") ? std::stoul(std::getenv("PV_CRASH_SEED"))
                                                   : std::random_device{}();
    std::mt19937 random(static_cast<unsigned>(seed));
    const unsigned trials = trial_count();
    fmt::print("crash matrix: {} trials, seed {}, whole job {:.2f} s raw / {:.2f} s qcow2\n",
               trials, seed, m_samples[0].seconds, m_samples[1].seconds);
    unsigned partial = 0, leftover_trials = 0;
    for (unsigned trial = 0; trial < trials; ++trial) {
        const unsigned round = trial / 2;
        auto& sample = m_samples[(round + round / kBoundaries.size()) % 2];
        KillPlan plan;
        std::string point;
        if (trial % 2 == 0) {
            plan.after_phase = kBoundaries[round % kBoundaries.size()];
            point = "after " + plan.after_phase;
        } else {
            std::uniform_real_distribution<double> moment(0, 1.1 * sample.seconds);
            plan.delay = std::chrono::milliseconds(static_cast<int64_t>(1000 * moment(random)));
            point = "random";
        }
        const auto job = run_and_kill(patch_command(sample), plan, [this] { run_gc(); });
        if (job.stuck_in_exit) {
            ++m_stuck;
            fmt::print("  trial {} ({}): the killed job hung in exit; gc {} it\n", trial, point,
                       job.reaped ? "freed" : "did NOT free");
        }
        if (!job.reaped) {
            ADD_FAILURE() << "trial " << trial << ": patchvisor " << job.pid << " never exited";
            break;
        }
        std::string outcome;
        if (sparse_sha256(sample.copy) == sample.pristine_sha) {
            outcome = "untouched";
        } else {
            outcome = verify_patched(sample);
            if (outcome != "replaced") {
                ++partial;
                ADD_FAILURE() << "trial " << trial << " (" << point << ", " << sample.format
                              << "): PARTIAL image: " << outcome << "\n"
                              << job.stderr_text;
                outcome = "PARTIAL";
            }
            restore(sample);
        }
        if (!job.killed) {
            outcome += fmt::format(" (ran to exit {})", job.exit_code);
            // The machine got faster than at the calibration: aim the random
            // moments at the shorter job, so they fall inside it.
            if (job.exit_code == 0)
                sample.seconds = std::min(sample.seconds, job.elapsed.count());
        }
        ++m_table[point][outcome];
        std::string leftovers;
        if (!collect_garbage(job.pid, sample, leftovers)) {
            ++leftover_trials;
            ADD_FAILURE() << "trial " << trial << " (" << point << "): left after gc:\n"
                          << leftovers;
        }
        if ((trial + 1) % 50 == 0)
            fmt::print("  {} trials done\n", trial + 1);
        std::fflush(stdout);
    }
    fmt::print("{:<16} outcomes\n", "kill point");
    for (const auto& [point, outcomes] : m_table) {
        std::string line;
        for (const auto& [outcome, count] : outcomes)
            line += fmt::format("  {} {}", outcome, count);
        fmt::print("{:<16}{}\n", point, line);
    }
    std::map<std::string, unsigned> totals;
    for (const auto& [point, outcomes] : m_table)
        for (const auto& [outcome, count] : outcomes)
            totals[outcome.substr(0, outcome.find(' '))] += count;
    for (const auto& [outcome, count] : totals)
        fmt::print("total {}: {}\n", outcome, count);
    for (const auto& [kind, count] : m_removed)
        fmt::print("gc removed {} {}\n", count, kind);
    for (const auto& [runs, count] : m_gc_runs)
        fmt::print("clean after gc run {}: {} trials\n", runs, count);
    fmt::print("killed jobs hung in exit until gc aborted their FUSE connection: {}\n", m_stuck);
    fmt::print("partial images: {}, trials with leftovers after gc: {}\n", partial,
               leftover_trials);
    EXPECT_EQ(partial, 0u);
    EXPECT_EQ(leftover_trials, 0u);
}

}  // namespace
}  // namespace pv::test
