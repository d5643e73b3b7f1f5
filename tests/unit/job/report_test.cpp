// The JSON report says only what was measured: "after" and
// "advisories_fixed" come from the host's read-back of a patched image and
// are absent otherwise; the plan is its own field.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "patcher/job/report.hpp"

namespace pv::patcher {
namespace {

JobReport planned_report(JobResult result) {
    JobReport report;
    report.result = result;
    report.plan = {
        {"libssl3", "amd64", "3.0.20-1", "3.0.22-1", {"DSA-1"}, "upgrade", "security update"},
        {"openssl", "amd64", "3.0.20-1", "3.0.22-1", {"DSA-1", "DSA-2"}},
        {"libnew1", "amd64", std::nullopt, "1.0-1", {"DSA-3"}, "install", "new dependency"}};
    report.advisories = {{"DSA-1", {"CVE-1"}}, {"DSA-2", {"CVE-2"}}, {"DSA-3", {"CVE-3"}}};
    return report;
}

TEST(Report, ThePlanIsItsOwnFieldForEveryResult) {
    for (const auto result : {JobResult::Failed, JobResult::MissingPatches, JobResult::Patched}) {
        const auto json = to_json(planned_report(result));
        ASSERT_EQ(json["plan"].size(), 3u);
        EXPECT_EQ(json["plan"][0], nlohmann::json({{"name", "libssl3"},
                                                   {"architecture", "amd64"},
                                                   {"from", "3.0.20-1"},
                                                   {"to", "3.0.22-1"},
                                                   {"advisories", {"DSA-1"}},
                                                   {"action", "upgrade"},
                                                   {"reason", "security update"}}));
        EXPECT_TRUE(json["plan"][2]["from"].is_null());
        EXPECT_EQ(json["advisories"].size(), 3u);
    }
}

TEST(Report, AFailedJobHasNoAfterAndFixesNothing) {
    auto report = planned_report(JobResult::Failed);
    // Even had the host measured something before the job failed.
    report.measured = {{"libssl3", "amd64", "3.0.22-1"}};
    report.measured_from = "status";
    const auto json = to_json(report);
    for (const auto& package : json["packages"])
        EXPECT_FALSE(package.contains("after")) << package;
    EXPECT_EQ(json["packages"][0]["before"], "3.0.20-1");
    EXPECT_TRUE(json["advisories_fixed"].empty());
    EXPECT_TRUE(json["verified_from"].is_null());
}

TEST(Report, ACheckHasNoAfterAndFixesNothing) {
    const auto json = to_json(planned_report(JobResult::MissingPatches));
    for (const auto& package : json["packages"])
        EXPECT_FALSE(package.contains("after")) << package;
    EXPECT_TRUE(json["advisories_fixed"].empty());
}

TEST(Report, APatchedJobReportsWhatTheHostReadBack) {
    auto report = planned_report(JobResult::Patched);
    report.measured = {{"libssl3", "amd64", "3.0.22-1"}, {"openssl", "amd64", "3.0.22-1"}};
    report.measured_from = "/var/lib/dpkg/status on the whole disk of x";
    const auto json = to_json(report);
    EXPECT_EQ(json["packages"][0]["after"], "3.0.22-1");
    EXPECT_EQ(json["packages"][1]["after"], "3.0.22-1");
    // Not measured, so not claimed, and its advisory is not fixed.
    EXPECT_FALSE(json["packages"][2].contains("after"));
    EXPECT_EQ(json["advisories_fixed"],
              nlohmann::json::parse(R"([{"id": "DSA-1", "cves": ["CVE-1"]},
                                        {"id": "DSA-2", "cves": ["CVE-2"]}])"));
    EXPECT_EQ(json["verified_from"], report.measured_from);
}

TEST(Report, AnAdvisoryIsFixedOnlyWhenEachOfItsPackagesIsAtItsPlannedVersion) {
    auto report = planned_report(JobResult::Patched);
    report.measured = {{"libssl3", "amd64", "3.0.22-1"},
                       {"openssl", "amd64", "3.0.21-1"},
                       {"libnew1", "amd64", "1.0-1"}};
    std::vector<std::string> ids;
    for (const auto& advisory : report.advisories_fixed())
        ids.push_back(advisory.id);
    EXPECT_EQ(ids, (std::vector<std::string>{"DSA-3"}));
}

}  // namespace
}  // namespace pv::patcher
