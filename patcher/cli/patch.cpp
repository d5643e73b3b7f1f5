// patchvisor patch and patchvisor check: the job on each image in turn.

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patcher/cli/commands.hpp"
#include "patcher/cli/domain.hpp"
#include "patcher/cli/gc_scan.hpp"
#include "patcher/cli/job_flags.hpp"
#include "patcher/cli/job_output.hpp"

namespace pv::cli {

void print_summary(FILE* out, const patcher::JobReport& report, patcher::JobMode mode) {
    using patcher::JobResult;
    switch (report.result) {
        case JobResult::Patched:
            fmt::print(out, "patched {} in {:.1f} s -> {}\n", report.image, report.total_seconds(),
                       report.output.value_or(report.image));
            break;
        case JobResult::MissingPatches:
            fmt::print(out, "{} is missing {} patch{}\n", report.image, report.packages.size(),
                       report.packages.size() == 1 ? "" : "es");
            break;
        case JobResult::NothingToDo:
            fmt::print(out,
                       "nothing to do: {} has every patch the catalog offers; "
                       "it was not changed\n",
                       report.image);
            return;
        case JobResult::Failed:
            fmt::print(stderr, "patchvisor: {} failed{}: {}\n  the original is unchanged\n",
                       report.image,
                       report.failed_phase.empty() ? "" : " in phase " + report.failed_phase,
                       report.error);
            if (!report.agent_log.empty())
                fmt::print(stderr, "  agent log: {}\n", report.agent_log);
            return;
    }
    for (const auto& change : report.packages)
        fmt::print(out, "  {} {}:{} {} -> {}  {}\n",
                   mode == patcher::JobMode::Check ? "missing" : "updated", change.name,
                   change.architecture, change.before, change.after,
                   fmt::join(change.advisories, ", "));
    for (const auto& advisory : report.advisories)
        fmt::print(out, "  {} fixes {}\n", advisory.id, fmt::join(advisory.cves, " "));
}

int combined_exit_code(const std::vector<patcher::JobReport>& reports) {
    bool all_nothing = true;
    for (const auto& report : reports) {
        if (report.result == patcher::JobResult::Failed)
            return kExitFailed;
        all_nothing = all_nothing && report.result == patcher::JobResult::NothingToDo;
    }
    return all_nothing ? kExitNothingToDo : kExitOk;
}

namespace {

Result<int> run_jobs(const JobFlags& flags, patcher::JobMode mode) {
    if (!flags.output.empty() && flags.images.size() != 1)
        return fail(make_error("patch", "--output takes exactly one IMAGE"));
    FILE* out = flags.json ? stderr : stdout;
    note_leftovers(flags.work_dir);
    std::vector<patcher::JobReport> reports;
    for (const auto& image : flags.images) {
        const auto options = PV_TRY(job_options(flags, image, mode));
        fmt::print(out, "{} {} with catalog {}\n",
                   mode == patcher::JobMode::Check ? "checking" : "patching", image, flags.catalog);
        ConsoleObserver observer(flags.json, flags.verbose);
        reports.push_back(patcher::run_job(options, observer));
        print_summary(out, reports.back(), mode);
    }
    if (!flags.json_report.empty())
        PV_TRY(write_json_report(flags.json_report, reports));
    if (flags.json) {
        nlohmann::json json = nlohmann::json::array();
        for (const auto& report : reports)
            json.push_back(patcher::to_json(report));
        fmt::print("{}\n", (reports.size() == 1 ? json[0] : json).dump());
    }
    return combined_exit_code(reports);
}

}  // namespace

void add_patch_commands(CLI::App& app, CommandResult& result) {
    auto* patch = app.add_subcommand(
        "patch",
        "Patch images: overlay, sandbox, install the catalog's updates, commit. Leftovers of "
        "killed runs are not removed on start, only noted: `patchvisor gc` removes them");
    auto patch_flags = std::make_shared<JobFlags>();
    add_job_flags(*patch, *patch_flags, FlagSet::Patch);
    auto patch_domain = add_domain_flags(*patch);
    patch->callback([&result, patch_flags, patch_domain] {
        result.outcome = patch_domain->name.empty()
                             ? run_jobs(*patch_flags, patcher::JobMode::Patch)
                             : run_domain(*patch_flags, *patch_domain, patcher::JobMode::Patch);
    });

    auto* check = app.add_subcommand(
        "check", "List the catalog's patches each image is missing; writes nothing");
    auto check_flags = std::make_shared<JobFlags>();
    add_job_flags(*check, *check_flags, FlagSet::Check);
    auto check_domain = add_domain_flags(*check);
    check->callback([&result, check_flags, check_domain] {
        result.outcome = check_domain->name.empty()
                             ? run_jobs(*check_flags, patcher::JobMode::Check)
                             : run_domain(*check_flags, *check_domain, patcher::JobMode::Check);
    });
}

}  // namespace pv::cli
