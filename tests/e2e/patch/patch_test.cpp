// patchvisor patch and check on the sample images, end to end through the
// jail sandbox. Every result is read back with tools we did not write:
// debugfs and dpkg-query for package versions, qemu-img check, e2fsck.

#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

class PatchJob : public ::testing::Test {
  protected:
    // The expected versions are what the catalog's package files say of
    // themselves (dpkg-deb -f), never what patchvisor reports.
    void SetUp() override {
        m_catalog = image_artifact("catalog");
        ASSERT_FALSE(m_catalog.empty());
        for (const auto& package : catalog_packages(m_catalog))
            m_catalog_versions[package.name] = package.version;
        ASSERT_EQ(m_catalog_versions.size(), 2u) << "the catalog holds libssl3 and openssl";
    }

    std::string job_flags() const {
        return " --catalog " + quote(m_catalog) + " --work-dir " + quote(m_dir.file("work"));
    }

    void expect_patched(const std::string& image) {
        for (const auto& [package, version] : m_catalog_versions)
            EXPECT_EQ(installed_version(image, package), version) << package;
    }

    // Before a job: every catalog package is installed in IMAGE at a lower
    // version, by dpkg's order, so a job that changes nothing cannot pass.
    void expect_release_versions(const std::string& image) {
        for (const auto& [package, version] : m_catalog_versions) {
            const auto installed = installed_version(image, package);
            ASSERT_FALSE(installed.empty()) << package;
            EXPECT_TRUE(dpkg_version_lower(installed, version))
                << package << " " << installed << " should be older than " << version;
        }
    }

    TempDir m_dir;
    std::string m_catalog;
    std::map<std::string, std::string> m_catalog_versions;
};

TEST_F(PatchJob, PatchesTheRawSampleInPlaceAndReports) {
    const auto image = copy_sample(m_dir, "sample-raw", "vm.raw");
    expect_release_versions(image);
    const auto report_path = m_dir.file("report.json");
    const auto result =
        patchvisor("patch " + quote(image) + job_flags() + " --json-report " + quote(report_path));
    ASSERT_EQ(result.exit_code, 0) << result.output;
    expect_patched(image);
    const auto fsck = run("e2fsck -fn " + quote(image));
    EXPECT_EQ(fsck.exit_code, 0) << fsck.output;

    const auto report = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    EXPECT_EQ(report["result"], "patched");
    EXPECT_EQ(report["exit_code"], 0);
    EXPECT_EQ(report["format"], "raw");
    EXPECT_EQ(report["sandbox"]["kind"], "jail");
    EXPECT_FALSE(report["sandbox"]["reason"].get<std::string>().empty());
    EXPECT_EQ(report["os"]["os_release"]["ID"], "debian");
    // The report is held against the package files, not the other way round.
    ASSERT_EQ(report["packages"].size(), 2u);
    for (const auto& change : report["packages"])
        EXPECT_EQ(change["after"], m_catalog_versions.at(change["name"].get<std::string>()));
    EXPECT_FALSE(report["advisories_fixed"].empty());
    std::vector<std::string> phases;
    for (const auto& phase : report["phases"])
        phases.push_back(phase["name"]);
    EXPECT_EQ(phases,
              (std::vector<std::string>{"lock", "catalog", "overlay", "sandbox", "hello", "inspect",
                                        "detect", "stage", "apply", "finish", "verify", "commit"}));
    // The job's overlay is removed when it ends; only the agent log stays.
    for (const auto& entry : std::filesystem::directory_iterator(m_dir.file("work")))
        EXPECT_FALSE(entry.path().string().ends_with(".overlay.qcow2")) << entry.path();
}

TEST_F(PatchJob, PatchesTheQcow2SampleToAnOutputAndLeavesTheOriginal) {
    const auto image = copy_sample(m_dir, "sample-qcow2", "vm.qcow2");
    expect_release_versions(image);
    const auto before = sha256_of_file(image);
    const auto output = m_dir.file("patched.qcow2");
    const auto result =
        patchvisor("patch " + quote(image) + job_flags() + " --output " + quote(output));
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_EQ(sha256_of_file(image), before);
    const auto check = run("qemu-img check " + quote(output));
    EXPECT_EQ(check.exit_code, 0) << check.output;
    expect_patched(output);
    expect_release_versions(image);
}

TEST_F(PatchJob, PatchesTheGptSampleInPlaceKeepingABackup) {
    const auto image = copy_sample(m_dir, "sample-gpt", "vm-gpt.raw");
    expect_release_versions(image);
    const auto before = sha256_of_file(image);
    const auto result = patchvisor("patch " + quote(image) + job_flags() + " --keep-backup");
    ASSERT_EQ(result.exit_code, 0) << result.output;
    expect_patched(image);
    EXPECT_EQ(sha256_of_file(image + ".pre-patch"), before);
    const auto table = run("sgdisk -p " + quote(image));
    EXPECT_NE(table.output.find("8300"), std::string::npos) << table.output;
}

TEST_F(PatchJob, CheckListsExactlyTheSampleAdvisoryAndWritesNothing) {
    const auto image = copy_sample(m_dir, "sample-raw", "vm.raw");
    const auto before = sha256_of_file(image);
    const auto result = patchvisor("check " + quote(image) + job_flags() + " --json");
    ASSERT_EQ(result.exit_code, 0) << result.output;
    const auto json_start = result.output.rfind("\n{");
    const auto report = nlohmann::json::parse(result.output.substr(json_start + 1));
    EXPECT_EQ(report["result"], "missing-patches");
    const auto manifest =
        nlohmann::json::parse(run("cat " + quote(m_catalog + "/manifest.json")).output);
    std::set<std::string> expected_ids;
    for (const auto& advisory : manifest["advisories"])
        expected_ids.insert(advisory["id"].get<std::string>());
    std::set<std::string> ids;
    for (const auto& advisory : report["advisories"])
        ids.insert(advisory["id"].get<std::string>());
    EXPECT_EQ(ids, expected_ids);
    // A check fixes nothing and measures nothing.
    EXPECT_TRUE(report["advisories_fixed"].empty());
    for (const auto& change : report["packages"])
        EXPECT_FALSE(change.contains("after")) << change;
    std::set<std::string> packages, in_catalog;
    for (const auto& change : report["packages"])
        packages.insert(change["name"].get<std::string>());
    for (const auto& [name, version] : m_catalog_versions)
        in_catalog.insert(name);
    EXPECT_EQ(packages, in_catalog);
    EXPECT_EQ(sha256_of_file(image), before);
    EXPECT_FALSE(std::filesystem::exists(image + ".pre-patch"));
}

TEST_F(PatchJob, APatchedImageHasNothingToDo) {
    const auto image = copy_sample(m_dir, "sample-raw", "vm.raw");
    expect_release_versions(image);
    ASSERT_EQ(patchvisor("patch " + quote(image) + job_flags()).exit_code, 0);
    expect_patched(image);
    const auto patched = sha256_of_file(image);
    const auto again = patchvisor("patch " + quote(image) + job_flags() + " --output " +
                                  quote(m_dir.file("never.raw")));
    EXPECT_EQ(again.exit_code, 3) << again.output;
    EXPECT_NE(again.output.find("nothing to do"), std::string::npos) << again.output;
    EXPECT_EQ(sha256_of_file(image), patched);
    EXPECT_FALSE(std::filesystem::exists(m_dir.file("never.raw")));
}

TEST_F(PatchJob, BatchPatchesImagesInParallelAndReportsThroughput) {
    const auto first = copy_sample(m_dir, "sample-raw", "a.raw");
    const auto second = copy_sample(m_dir, "sample-qcow2", "b.qcow2");
    expect_release_versions(first);
    expect_release_versions(second);
    const auto report_path = m_dir.file("batch.json");
    const auto started = std::chrono::steady_clock::now();
    const auto result = patchvisor("batch --jobs 2" + job_flags() + " --json-report " +
                                   quote(report_path) + " " + quote(first) + " " + quote(second));
    const std::chrono::duration<double> process_seconds =
        std::chrono::steady_clock::now() - started;
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("images/minute"), std::string::npos) << result.output;
    expect_patched(first);
    expect_patched(second);
    const auto report = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    const auto& summary = report["summary"];
    EXPECT_EQ(summary["images"], 2);
    EXPECT_EQ(summary["results"]["patched"], 2);
    ASSERT_EQ(report["reports"].size(), 2u);
    EXPECT_EQ(report["reports"][1]["format"], "qcow2");
    // The batch's wall time lies between its longest job and the process
    // this test timed, and the throughput is the images over it.
    const double wall = summary["wall_seconds"].get<double>();
    EXPECT_LE(wall, process_seconds.count());
    for (const auto& job : report["reports"])
        EXPECT_GE(wall, job["total_seconds"].get<double>()) << job.dump();
    EXPECT_NEAR(summary["images_per_minute"].get<double>(), 60.0 * 2 / wall, 1e-6);
    // Nearest-rank percentiles of two values: p50 the smaller, p95 the
    // larger of the two jobs' own seconds in each phase.
    ASSERT_FALSE(summary["phases"].empty());
    for (const auto& [phase, figures] : summary["phases"].items()) {
        std::vector<double> seconds;
        for (const auto& job : report["reports"])
            for (const auto& timed : job["phases"])
                if (timed["name"] == phase)
                    seconds.push_back(timed["seconds"].get<double>());
        ASSERT_EQ(seconds.size(), 2u) << phase;
        EXPECT_DOUBLE_EQ(figures["p50"].get<double>(), std::min(seconds[0], seconds[1])) << phase;
        EXPECT_DOUBLE_EQ(figures["p95"].get<double>(), std::max(seconds[0], seconds[1])) << phase;
    }
}

}  // namespace
}  // namespace pv::test
