// The crash matrix: `patchvisor patch` SIGKILLed at every phase
// boundary and at random moments, on copies of the sample raw and qcow2
// images. After each kill the original must be byte-identical (SHA-256) or
// wholly replaced by a verified patched image (for raw and qcow2 alike:
// qemu-img check clean where qcow2, e2fsck -fn clean, the versions of the
// catalog's package files read back with debugfs + dpkg-query), never
// anything in between; then `patchvisor gc` must leave nothing of the killed
// run: no mount, loop device or runtime directory of its pid, no temp
// target next to the image, no overlay or job record in the work directory.
// A trial meant to kill after a phase fails when the job never printed that
// phase, and a job that ended by itself must have succeeded.
//
// PV_CRASH_TRIALS (default 12) trials; PV_CRASH_SEED fixes the random
// moments; PV_CRASH_POINTS=a,b limits the phase kills to those phases.
// scripts/crash-matrix N runs this with N trials.

#include <algorithm>
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

// "replaced" if IMAGE passes tests/support/image-packages (qemu-img check
// for qcow2, e2fsck -fn of the filesystem, the package database dumped by
// debugfs) and holds EXPECTED (package → version), else what is wrong.
std::string verify_replaced(const std::string& image,
                            const std::map<std::string, std::string>& expected) {
    std::vector<std::string> packages;
    for (const auto& [package, version] : expected)
        packages.push_back(package);
    const auto read = read_image_versions(image, packages);
    if (!read.error.empty())
        return read.error;
    for (const auto& [package, version] : expected)
        if (read.versions.at(package) != version)
            return fmt::format("{} is '{}', not {}", package, read.versions.at(package), version);
    return "replaced";
}

// Why a trial tested nothing, or "" when it did: a kill point after a phase
// the job never printed (it failed earlier, or the phase is gone), or a job
// that ended by itself with a failure. A job that printed the phase line and
// then won the race with the kill, or outlived a random moment, and
// succeeded, is fine.
std::string untested_because(const KillPlan& plan, const KilledJob& job) {
    const bool reached =
        plan.after_phase.empty() || plan.after_phase == "start" ||
        std::find(job.phases.begin(), job.phases.end(), plan.after_phase) != job.phases.end();
    if (!reached)
        return "the job never reached the phase " + plan.after_phase + " to kill after it";
    if (!job.killed && job.exit_code != 0)
        return "the job ended by itself with exit " + std::to_string(job.exit_code);
    return "";
}

// The kill points: PV_CRASH_POINTS (comma-separated phases) or every
// boundary.
std::vector<std::string> boundaries() {
    const char* text = std::getenv("PV_CRASH_POINTS");
    if (text == nullptr || *text == '\0')
        return kBoundaries;
    std::vector<std::string> points;
    std::string list(text);
    for (size_t at = 0, end; at <= list.size(); at = end + 1) {
        end = std::min(list.find(',', at), list.size());
        points.push_back(list.substr(at, end - at));
    }
    return points;
}

unsigned trial_count() {
    const char* text = std::getenv("PV_CRASH_TRIALS");
    return text != nullptr ? static_cast<unsigned>(std::stoul(text)) : 12;
}

class CrashMatrix : public ::testing::Test {
  protected:
    // The expected versions are the catalog's package files' own
    // (dpkg-deb -f), and each sample must hold lower ones.
    void SetUp() override {
        m_catalog = image_artifact("catalog");
        m_work = m_dir.file("work");
        for (const auto& package : catalog_packages(m_catalog))
            m_expected[package.name] = package.version;
        ASSERT_EQ(m_expected.size(), 2u) << "the catalog holds libssl3 and openssl";
        for (const auto& format : {"raw", "qcow2"}) {
            Sample sample{format, image_artifact(std::string("sample-") + format), "", "", 0};
            for (const auto& [package, version] : m_expected)
                ASSERT_TRUE(
                    dpkg_version_lower(installed_version(sample.pristine, package), version))
                    << sample.pristine << ": " << package << " is not older than " << version;
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

    std::string verify_patched(const Sample& sample) const {
        return verify_replaced(sample.copy, m_expected);
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
    const auto points = boundaries();
    fmt::print("crash matrix: {} trials, seed {}, whole job {:.2f} s raw / {:.2f} s qcow2\n",
               trials, seed, m_samples[0].seconds, m_samples[1].seconds);
    unsigned partial = 0, leftover_trials = 0, untested_trials = 0;
    for (unsigned trial = 0; trial < trials; ++trial) {
        const unsigned round = trial / 2;
        auto& sample = m_samples[(round + round / points.size()) % 2];
        KillPlan plan;
        std::string point;
        if (trial % 2 == 0) {
            plan.after_phase = points[round % points.size()];
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
        const auto untested = untested_because(plan, job);
        if (!untested.empty()) {
            ++untested_trials;
            ADD_FAILURE() << "trial " << trial << " (" << point << ", " << sample.format
                          << "): " << untested << "\n"
                          << job.stderr_text;
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
        if (!untested.empty()) {
            outcome += " (UNTESTED)";
        } else if (!job.killed) {
            // It printed the phase line, then won the race with the kill.
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
    fmt::print(
        "partial images: {}, trials with leftovers after gc: {}, trials whose kill point was "
        "never reached or whose job failed by itself: {}\n",
        partial, leftover_trials, untested_trials);
    EXPECT_EQ(partial, 0u);
    EXPECT_EQ(leftover_trials, 0u);
    EXPECT_EQ(untested_trials, 0u);
}

// The judgement of a trial, on made-up runs.
TEST(CrashMatrixTrial, AKillPointTheJobNeverReachedIsUntested) {
    KilledJob job;
    job.exit_code = 0;
    job.phases = {"lock", "catalog", "overlay"};
    EXPECT_NE(untested_because({"commit", {}}, job), "");
    job.exit_code = 1;
    EXPECT_NE(untested_because({"commit", {}}, job), "");
    job.killed = true;
    EXPECT_NE(untested_because({"commit", {}}, job), "") << "killed later, never after commit";
}

TEST(CrashMatrixTrial, AJobThatFailedByItselfIsUntested) {
    KilledJob job;
    job.exit_code = 1;
    job.phases = {"lock", "catalog"};
    EXPECT_NE(untested_because({"", std::chrono::milliseconds(900)}, job), "");
    EXPECT_NE(untested_because({"lock", {}}, job), "") << "the kill after lock never landed";
}

TEST(CrashMatrixTrial, AKillAfterAReachedPhaseOrARunThatSucceededIsTested) {
    KilledJob job;
    job.killed = true;
    job.phases = {"lock", "catalog"};
    EXPECT_EQ(untested_because({"catalog", {}}, job), "");
    EXPECT_EQ(untested_because({"start", {}}, KilledJob{.killed = true}), "");
    EXPECT_EQ(untested_because({"", std::chrono::milliseconds(900)}, job), "");
    job.killed = false;
    job.exit_code = 0;
    EXPECT_EQ(untested_because({"catalog", {}}, job), "") << "printed it, then won the race";
    EXPECT_EQ(untested_because({"", std::chrono::milliseconds(900)}, job), "");
}

// The oracle of "wholly replaced" reads the filesystem of a qcow2 image
// too: a qcow2 file that qemu-img check finds clean, whose package versions
// are the expected ones, but whose ext4 has a wrong link count, is refused.
TEST(CrashMatrixVerify, AQcow2WithADamagedFilesystemIsNotReplaced) {
    TempDir dir;
    const auto sample = image_artifact("sample-qcow2");
    ASSERT_FALSE(sample.empty());
    std::map<std::string, std::string> expected;
    for (const auto& package : catalog_packages(image_artifact("catalog")))
        expected[package.name] = installed_version(sample, package.name);
    const auto good = dir.file("good.qcow2");
    must("cp " + quote(sample) + " " + quote(good));
    ASSERT_EQ(verify_replaced(good, expected), "replaced");
    const auto raw = dir.file("damaged.raw");
    const auto damaged = dir.file("damaged.qcow2");
    must("qemu-img convert -O raw " + quote(sample) + " " + quote(raw));
    must("debugfs -w -R 'sif /etc/hostname links_count 5' " + quote(raw) + " 2>/dev/null");
    must("qemu-img convert -O qcow2 " + quote(raw) + " " + quote(damaged));
    ASSERT_EQ(run("qemu-img check " + quote(damaged)).exit_code, 0);
    const auto verdict = verify_replaced(damaged, expected);
    EXPECT_NE(verdict, "replaced");
    EXPECT_NE(verdict.find("e2fsck"), std::string::npos) << verdict;
}

}  // namespace
}  // namespace pv::test
