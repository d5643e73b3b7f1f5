#pragma once

// What a patch or check job did, for people (phase lines) and machines (the
// JSON report, DESIGN.md "Outputs").

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace pv::patcher {

enum class JobResult {
    Patched,         // exit 0: the image now has every applicable patch
    MissingPatches,  // exit 0 of `check`: patches apply, nothing was written
    NothingToDo,     // exit 3: no patch applies; the image is untouched
    Failed,          // exit 1: the original is byte-identical
};

[[nodiscard]] const char* result_name(JobResult result);
[[nodiscard]] int exit_code_of(JobResult result);

struct PhaseTiming {
    std::string name;
    double seconds = 0;
};

struct PackageChange {
    std::string name;
    std::string architecture;
    std::string before;
    std::string after;  // the catalog version (planned, or verified once patched)
    std::vector<std::string> advisories;
};

struct AdvisoryReport {
    std::string id;
    std::vector<std::string> cves;
};

struct JobReport {
    std::string image;
    std::string format;
    std::map<std::string, std::string> os_release;
    std::string package_manager;
    size_t packages_installed = 0;
    std::string sandbox_kind;
    std::string sandbox_reason;
    std::string agent_log;
    std::string agent_version;
    std::string agent_kernel;
    std::vector<PackageChange> packages;
    std::vector<AdvisoryReport> advisories;
    std::vector<PhaseTiming> phases;
    JobResult result = JobResult::Failed;
    std::string error;
    std::string failed_phase;  // the phase that was running when the job failed
    std::optional<std::string> output;
    std::optional<std::string> backup;

    [[nodiscard]] double total_seconds() const;
    [[nodiscard]] std::string os_name() const;  // PRETTY_NAME, or ID VERSION_ID
};

[[nodiscard]] nlohmann::json to_json(const JobReport& report);

}  // namespace pv::patcher
