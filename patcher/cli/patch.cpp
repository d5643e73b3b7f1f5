// patchvisor patch and patchvisor check: the job on each image in turn.

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patcher/cli/commands.hpp"
#include "patcher/cli/domain.hpp"
#include "patcher/cli/gc_scan.hpp"
#include "patcher/cli/job_flags.hpp"
#include "patcher/cli/job_output.hpp"

namespace pv::cli {

namespace {

// One line per planned package (what it does, from and to, why, what it
// fixes), one per package kept back, then the advisories and their CVEs. A
// patched job prints the versions the host read back, a check the plan.
void print_plan(FILE* out, const patcher::JobReport& report, patcher::JobMode mode) {
    const bool check = mode == patcher::JobMode::Check;
    for (const auto& planned : report.plan) {
        const bool is_new = planned.action == "install";
        const char* verb =
            check ? (is_new ? "install" : "upgrade") : (is_new ? "installed" : "updated");
        fmt::print(out, "  {:<9} {}:{} {} -> {}  {}{}\n", verb, planned.name, planned.architecture,
                   planned.from.value_or("(none)"),
                   check ? planned.to : report.after(planned).value_or("?"), planned.reason,
                   planned.advisories.empty()
                       ? std::string()
                       : fmt::format("  [{}]", fmt::join(planned.advisories, ", ")));
    }
    for (const auto& kept : report.kept_back)
        fmt::print(out, "  {:<9} {}:{} {} ({} available)  {}\n", "keep-back", kept.name,
                   kept.architecture, kept.installed, kept.available, kept.reason);
    for (const auto& advisory : check ? report.advisories : report.advisories_fixed())
        fmt::print(out, "  {} {} {}\n", advisory.id, check ? "would fix" : "fixes",
                   fmt::join(advisory.cves, " "));
    if (const auto cves = report.cves(); check && !cves.empty())
        fmt::print(out, "  CVEs: {}\n", fmt::join(cves, " "));
}

}  // namespace

void print_summary(FILE* out, const patcher::JobReport& report, patcher::JobMode mode) {
    using patcher::JobResult;
    switch (report.result) {
        case JobResult::Patched:
            fmt::print(out, "patched {} in {:.1f} s -> {}\n", report.image, report.total_seconds(),
                       report.output.value_or(report.image));
            break;
        case JobResult::MissingPatches:
            fmt::print(out, "{} is missing {} patch{}\n", report.image, report.plan.size(),
                       report.plan.size() == 1 ? "" : "es");
            break;
        case JobResult::NothingToDo:
            fmt::print(out,
                       "nothing to do: {} has every patch the source offers; "
                       "it was not changed\n",
                       report.image);
            print_plan(out, report, mode);
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
    print_plan(out, report, mode);
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
        fmt::print(out, "{} {} with {} {}\n",
                   mode == patcher::JobMode::Check ? "checking" : "patching", image,
                   flags.repo.empty() ? "catalog" : "repository",
                   flags.repo.empty() ? flags.catalog : flags.repo);
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
