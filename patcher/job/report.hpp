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

// One package the job means to install or upgrade, as planned before
// Apply. FROM is what the guest's inventory listed (none for a package the
// plan adds); TO and ARCHITECTURE are the package file's, which is what the
// package manager will record.
struct PlannedPackage {
    std::string name;
    std::string architecture;
    std::optional<std::string> from;
    std::string to;
    std::vector<std::string> advisories;
    std::string action;  // "upgrade", or "install" for a new dependency
    std::string reason;
};

// A package with a newer version that the plan leaves alone, and why.
struct KeptBackReport {
    std::string name;
    std::string architecture;
    std::string installed;
    std::string available;
    std::string reason;
};

// A planned package as the host read it back from the patched overlay
// (patcher/job/verification.hpp), never as the agent reported it.
struct MeasuredPackage {
    std::string name;
    std::string architecture;
    std::string version;
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
    std::vector<PlannedPackage> plan;
    std::vector<AdvisoryReport> advisories;  // of the plan
    std::vector<KeptBackReport> kept_back;
    // Filled by the verify phase only, once every planned package was read
    // back at its planned version; what was read (verification.hpp).
    std::vector<MeasuredPackage> measured;
    std::string measured_from;
    std::vector<PhaseTiming> phases;
    JobResult result = JobResult::Failed;
    std::string error;
    std::string failed_phase;  // the phase that was running when the job failed
    std::optional<std::string> output;
    std::optional<std::string> backup;

    [[nodiscard]] double total_seconds() const;
    // The measured version of a planned package, only for a patched job.
    [[nodiscard]] std::optional<std::string> after(const PlannedPackage& planned) const;
    // The plan's advisories all of whose packages were measured at their
    // planned versions; none unless the job patched the image.
    [[nodiscard]] std::vector<AdvisoryReport> advisories_fixed() const;
    [[nodiscard]] std::string os_name() const;  // PRETTY_NAME, or ID VERSION_ID
    // The CVE ids of every advisory the plan fixes, sorted, each once.
    [[nodiscard]] std::vector<std::string> cves() const;
};

[[nodiscard]] nlohmann::json to_json(const JobReport& report);

}  // namespace pv::patcher
