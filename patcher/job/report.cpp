#include "patcher/job/report.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

namespace pv::patcher {

const char* result_name(JobResult result) {
    switch (result) {
        case JobResult::Patched:
            return "patched";
        case JobResult::MissingPatches:
            return "missing-patches";
        case JobResult::NothingToDo:
            return "nothing-to-do";
        case JobResult::Failed:
            return "failed";
    }
    return "failed";
}

int exit_code_of(JobResult result) {
    switch (result) {
        case JobResult::Patched:
        case JobResult::MissingPatches:
            return 0;
        case JobResult::NothingToDo:
            return 3;
        case JobResult::Failed:
            return 1;
    }
    return 1;
}

double JobReport::total_seconds() const {
    double total = 0;
    for (const auto& phase : phases)
        total += phase.seconds;
    return total;
}

std::string JobReport::os_name() const {
    if (auto pretty = os_release.find("PRETTY_NAME"); pretty != os_release.end())
        return pretty->second;
    auto id = os_release.find("ID");
    auto version = os_release.find("VERSION_ID");
    std::string name = id != os_release.end() ? id->second : "unknown";
    if (version != os_release.end())
        name += " " + version->second;
    return name;
}

std::optional<std::string> JobReport::after(const PlannedPackage& planned) const {
    if (result != JobResult::Patched)
        return std::nullopt;
    for (const auto& package : measured)
        if (package.name == planned.name && package.architecture == planned.architecture)
            return package.version;
    return std::nullopt;
}

std::vector<std::string> JobReport::cves() const {
    std::set<std::string> all;
    for (const auto& advisory : advisories)
        all.insert(advisory.cves.begin(), advisory.cves.end());
    return {all.begin(), all.end()};
}

std::vector<AdvisoryReport> JobReport::advisories_fixed() const {
    std::vector<AdvisoryReport> fixed;
    for (const auto& advisory : advisories) {
        bool verified = true;
        for (const auto& planned : plan) {
            const bool lists = std::find(planned.advisories.begin(), planned.advisories.end(),
                                         advisory.id) != planned.advisories.end();
            if (lists && after(planned) != planned.to)
                verified = false;
        }
        if (verified && result == JobResult::Patched)
            fixed.push_back(advisory);
    }
    return fixed;
}

namespace {

nlohmann::json string_or_null(const std::optional<std::string>& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json advisories_json(const std::vector<AdvisoryReport>& advisories) {
    nlohmann::json json = nlohmann::json::array();
    for (const auto& advisory : advisories)
        json.push_back({{"id", advisory.id}, {"cves", advisory.cves}});
    return json;
}

// The plan, and per planned package what was there before and, when the
// host measured it on a patched image, after.
std::pair<nlohmann::json, nlohmann::json> plan_json(const JobReport& report) {
    nlohmann::json plan = nlohmann::json::array();
    nlohmann::json packages = nlohmann::json::array();
    for (const auto& planned : report.plan) {
        plan.push_back({{"name", planned.name},
                        {"architecture", planned.architecture},
                        {"from", string_or_null(planned.from)},
                        {"to", planned.to},
                        {"advisories", planned.advisories},
                        {"action", planned.action},
                        {"reason", planned.reason}});
        nlohmann::json package = {{"name", planned.name},
                                  {"architecture", planned.architecture},
                                  {"before", string_or_null(planned.from)},
                                  {"advisories", planned.advisories},
                                  {"action", planned.action},
                                  {"reason", planned.reason}};
        if (const auto after = report.after(planned))
            package["after"] = *after;
        packages.push_back(std::move(package));
    }
    return {std::move(plan), std::move(packages)};
}

}  // namespace

nlohmann::json to_json(const JobReport& report) {
    auto [plan, packages] = plan_json(report);
    nlohmann::json kept_back = nlohmann::json::array();
    for (const auto& kept : report.kept_back)
        kept_back.push_back({{"name", kept.name},
                             {"architecture", kept.architecture},
                             {"installed", kept.installed},
                             {"available", kept.available},
                             {"action", "keep-back"},
                             {"reason", kept.reason}});
    nlohmann::json phases = nlohmann::json::array();
    for (const auto& phase : report.phases)
        phases.push_back({{"name", phase.name}, {"seconds", phase.seconds}});
    return {
        {"image", report.image},
        {"format", report.format},
        {"result", result_name(report.result)},
        {"exit_code", exit_code_of(report.result)},
        {"error", report.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(report.error)},
        {"failed_phase", report.failed_phase.empty() ? nlohmann::json(nullptr)
                                                     : nlohmann::json(report.failed_phase)},
        {"os", {{"name", report.os_name()}, {"os_release", report.os_release}}},
        {"package_manager", report.package_manager},
        {"packages_installed", report.packages_installed},
        {"plan", std::move(plan)},
        {"packages", std::move(packages)},
        {"advisories", advisories_json(report.advisories)},
        {"advisories_fixed", advisories_json(report.advisories_fixed())},
        {"verified_from", report.result == JobResult::Patched && !report.measured_from.empty()
                              ? nlohmann::json(report.measured_from)
                              : nlohmann::json(nullptr)},
        {"kept_back", std::move(kept_back)},
        {"cves", report.cves()},
        {"sandbox",
         {{"kind", report.sandbox_kind},
          {"reason", report.sandbox_reason},
          {"agent_log", report.agent_log},
          {"agent_version", report.agent_version},
          {"kernel", report.agent_kernel}}},
        {"phases", phases},
        {"total_seconds", report.total_seconds()},
        {"output", string_or_null(report.output)},
        {"backup", string_or_null(report.backup)},
    };
}

}  // namespace pv::patcher
