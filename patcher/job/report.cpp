#include "patcher/job/report.hpp"

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

nlohmann::json to_json(const JobReport& report) {
    auto optional = [](const std::optional<std::string>& value) {
        return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
    };
    nlohmann::json packages = nlohmann::json::array();
    for (const auto& change : report.packages)
        packages.push_back({{"name", change.name},
                            {"architecture", change.architecture},
                            {"before", change.before},
                            {"after", change.after},
                            {"advisories", change.advisories}});
    nlohmann::json advisories = nlohmann::json::array();
    for (const auto& advisory : report.advisories)
        advisories.push_back({{"id", advisory.id}, {"cves", advisory.cves}});
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
        {"packages", packages},
        {"advisories_fixed", advisories},
        {"sandbox",
         {{"kind", report.sandbox_kind},
          {"reason", report.sandbox_reason},
          {"agent_log", report.agent_log},
          {"agent_version", report.agent_version},
          {"kernel", report.agent_kernel}}},
        {"phases", phases},
        {"total_seconds", report.total_seconds()},
        {"output", optional(report.output)},
        {"backup", optional(report.backup)},
    };
}

}  // namespace pv::patcher
