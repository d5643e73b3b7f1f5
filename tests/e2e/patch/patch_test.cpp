// patchvisor patch and check on the sample images, end to end through the
// jail sandbox. Every result is read back with tools we did not write:
// debugfs and dpkg-query for package versions, qemu-img check, e2fsck.

#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/patch/patch_test_support.hpp"

namespace pv::test {
namespace {

class PatchJob : public ::testing::Test {
  protected:
    void SetUp() override {
        m_catalog = image_artifact("catalog");
        ASSERT_FALSE(m_catalog.empty());
        for (const auto& package : {"libssl3", "openssl"}) {
            const auto version = run("dpkg-deb -f " + quote(catalog_file(package)) + " Version");
            ASSERT_EQ(version.exit_code, 0) << version.output;
            m_catalog_versions[package] = version.output.substr(0, version.output.find('\n'));
        }
    }

    std::string catalog_file(const std::string& package) const {
        for (const auto& entry : std::filesystem::directory_iterator(m_catalog))
            if (entry.path().filename().string().starts_with(package + "_"))
                return entry.path().string();
        ADD_FAILURE() << "no " << package << " in " << m_catalog;
        return "";
    }

    std::string job_flags() const {
        return " --catalog " + quote(m_catalog) + " --work-dir " + quote(m_dir.file("work"));
    }

    void expect_patched(const std::string& image) {
        for (const auto& [package, version] : m_catalog_versions)
            EXPECT_EQ(installed_version(image, package), version) << package;
    }

    void expect_release_versions(const std::string& image) {
        for (const auto& [package, version] : m_catalog_versions) {
            const auto installed = installed_version(image, package);
            ASSERT_FALSE(installed.empty()) << package;
            EXPECT_EQ(run("dpkg --compare-versions " + quote(installed) + " lt " + quote(version))
                          .exit_code,
                      0)
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
    ASSERT_EQ(report["packages"].size(), 2u);
    for (const auto& change : report["packages"])
        EXPECT_EQ(change["after"], m_catalog_versions[change["name"].get<std::string>()]);
    EXPECT_FALSE(report["advisories_fixed"].empty());
    std::vector<std::string> phases;
    for (const auto& phase : report["phases"])
        phases.push_back(phase["name"]);
    EXPECT_EQ(phases,
              (std::vector<std::string>{"lock", "catalog", "overlay", "sandbox", "hello", "inspect",
                                        "detect", "stage", "apply", "verify", "finish", "commit"}));
    // The job's overlay is removed when it ends; only the agent log stays.
    for (const auto& entry : std::filesystem::directory_iterator(m_dir.file("work")))
        EXPECT_FALSE(entry.path().string().ends_with(".overlay.qcow2")) << entry.path();
}

TEST_F(PatchJob, PatchesTheQcow2SampleToAnOutputAndLeavesTheOriginal) {
    const auto image = copy_sample(m_dir, "sample-qcow2", "vm.qcow2");
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
    for (const auto& advisory : report["advisories_fixed"])
        ids.insert(advisory["id"].get<std::string>());
    EXPECT_EQ(ids, expected_ids);
    std::set<std::string> packages;
    for (const auto& change : report["packages"])
        packages.insert(change["name"].get<std::string>());
    EXPECT_EQ(packages, (std::set<std::string>{"libssl3", "openssl"}));
    EXPECT_EQ(sha256_of_file(image), before);
    EXPECT_FALSE(std::filesystem::exists(image + ".pre-patch"));
}

TEST_F(PatchJob, APatchedImageHasNothingToDo) {
    const auto image = copy_sample(m_dir, "sample-raw", "vm.raw");
    ASSERT_EQ(patchvisor("patch " + quote(image) + job_flags()).exit_code, 0);
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
    const auto report_path = m_dir.file("batch.json");
    const auto result = patchvisor("batch --jobs 2" + job_flags() + " --json-report " +
                                   quote(report_path) + " " + quote(first) + " " + quote(second));
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("images/minute"), std::string::npos) << result.output;
    expect_patched(first);
    expect_patched(second);
    const auto report = nlohmann::json::parse(run("cat " + quote(report_path)).output);
    EXPECT_EQ(report["summary"]["images"], 2);
    EXPECT_EQ(report["summary"]["results"]["patched"], 2);
    EXPECT_GT(report["summary"]["images_per_minute"].get<double>(), 0);
    EXPECT_LE(report["summary"]["phases"]["apply"]["p50"].get<double>(),
              report["summary"]["phases"]["apply"]["p95"].get<double>());
    ASSERT_EQ(report["reports"].size(), 2u);
    EXPECT_EQ(report["reports"][1]["format"], "qcow2");
}

}  // namespace
}  // namespace pv::test
