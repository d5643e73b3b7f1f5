// patchvisor fleet submit: a list of images (or libvirt domains) becomes one
// Slurm array job, one image or domain per task, each task running
// `patchvisor patch ... --json-report REPORTS/task-N.json`. Slurm places
// the tasks on its nodes; `fleet status` gathers what they wrote.

#include <sys/wait.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "patcher/cli/commands.hpp"
#include "patcher/cli/fleet.hpp"
#include "patcher/cli/fleet_spec.hpp"

namespace pv::cli {

namespace {

struct SubmitFlags {
    std::string reports;
    std::string list;
    std::vector<std::string> domains;
    std::string connect;
    std::string catalog;
    std::vector<std::string> patch_arguments;  // after --
    std::vector<std::string> sbatch_arguments;
    unsigned max_running = 0;
    bool wait = false;
};

std::string shell_quote(const std::string& text) {
    std::string quoted = "'";
    for (const char c : text)
        quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
}

Result<void> check_target(const std::string& target) {
    if (target.empty() || target.find_first_of("\n\r") != std::string::npos)
        return fail(make_error("fleet target '" + target + "'", "empty or holds a line break"));
    return {};
}

// The batch script: task N reads line N+1 of the task list, runs the patch
// job and records where, when and how it ended. Nothing to do (exit 3) is
// a success for Slurm; the report tells it apart.
std::string batch_script(const std::string& reports, const FleetSpec& spec,
                         const SubmitFlags& flags) {
    const auto array =
        fmt::format("0-{}{}", spec.targets.size() - 1,
                    flags.max_running > 0 ? fmt::format("%{}", flags.max_running) : "");
    std::string patch = shell_quote(spec.patchvisor) + " patch";
    patch += spec.kind == TaskKind::Domain ? " --domain \"$target\"" : " \"$target\"";
    if (spec.kind == TaskKind::Domain && !spec.connect.empty())
        patch += " --connect " + shell_quote(spec.connect);
    for (const auto& argument : spec.patch_arguments)
        patch += " " + shell_quote(argument);
    patch += " --json-report \"$reports/task-$index.json\"";
    return fmt::format(
        "#!/bin/sh\n"
        "#SBATCH --job-name=patchvisor-fleet\n"
        "#SBATCH --array={}\n"
        "#SBATCH --output={}/task-%a.log\n"
        "#SBATCH --cpus-per-task=1\n"
        "reports={}\n"
        "index=$SLURM_ARRAY_TASK_ID\n"
        "target=$(sed -n \"$((index + 1))p\" \"$reports/tasks\")\n"
        "started=$(date +%s.%N)\n"
        "{}\n"
        "status=$?\n"
        "ended=$(date +%s.%N)\n"
        "printf '{{\"host\": \"%s\", \"started\": %s, \"ended\": %s, \"exit_code\": %s, "
        "\"slurm_job\": \"%s\"}}\\n' \"$(hostname)\" \"$started\" \"$ended\" \"$status\" "
        "\"${{SLURM_ARRAY_JOB_ID:-}}\" > \"$reports/task-$index.done\"\n"
        "[ \"$status\" -eq 3 ] && exit 0\n"
        "exit \"$status\"\n",
        array, reports, shell_quote(reports), patch);
}

Result<FleetSpec> make_spec(const SubmitFlags& flags) {
    FleetSpec spec;
    if (!flags.list.empty()) {
        spec.targets = PV_TRY(read_image_list(flags.list));
    } else {
        spec.kind = TaskKind::Domain;
        spec.targets = flags.domains;
        spec.connect = flags.connect;
    }
    for (const auto& target : spec.targets)
        PV_TRY(check_target(target));
    if (!flags.catalog.empty())
        spec.patch_arguments = {"--catalog", std::filesystem::absolute(flags.catalog).string()};
    spec.patch_arguments.insert(spec.patch_arguments.end(), flags.patch_arguments.begin(),
                                flags.patch_arguments.end());
    std::error_code error;
    spec.patchvisor = std::filesystem::read_symlink("/proc/self/exe", error).string();
    if (error)
        return fail(make_error("find the patchvisor binary", error.message()));
    return spec;
}

// Runs sbatch on SCRIPT; its --parsable output is "JOBID[;CLUSTER]".
Result<std::string> run_sbatch(const std::string& script, const SubmitFlags& flags) {
    std::string command = "sbatch --parsable";
    if (flags.wait)
        command += " --wait";
    for (const auto& argument : flags.sbatch_arguments)
        command += " " + shell_quote(argument);
    command += " " + shell_quote(script);
    FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr)
        return fail(errno_error("run sbatch"));
    std::string output;
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe) != nullptr)
        output += buffer;
    const int status = ::pclose(pipe);
    const auto job = output.substr(0, output.find_first_of(";\n"));
    // With --wait, sbatch's status is the array's highest task status: a
    // failed image is the report's business, not a failed submission.
    if (job.empty() || (!flags.wait && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)))
        return fail(make_error("submit " + script,
                               "sbatch failed (is Slurm's client installed and SLURM_CONF "
                               "set?): " +
                                   output));
    return job;
}

Result<int> submit(const SubmitFlags& flags) {
    auto spec = PV_TRY(make_spec(flags));
    const auto reports = std::filesystem::absolute(flags.reports).lexically_normal().string();
    std::error_code error;
    std::filesystem::create_directories(reports, error);
    if (error)
        return fail(make_error("create the reports directory " + reports, error.message()));
    if (std::filesystem::exists(fleet_spec_path(reports)))
        return fail(make_error("submit into " + reports,
                               "it already holds a fleet; choose a new --reports directory"));
    {
        std::ofstream tasks(reports + "/tasks");
        for (const auto& target : spec.targets)
            tasks << target << "\n";
        std::ofstream script(reports + "/fleet.sbatch");
        script << batch_script(reports, spec, flags);
        if (!tasks || !script)
            return fail(make_error("write the task list and script in " + reports, "failed"));
    }
    PV_TRY(write_fleet_spec(reports, spec));
    fmt::print(stderr, "fleet: {} {} task{} in {}\n", spec.targets.size(),
               spec.kind == TaskKind::Image ? "image" : "domain",
               spec.targets.size() == 1 ? "" : "s", reports);
    spec.slurm_job = PV_TRY(run_sbatch(reports + "/fleet.sbatch", flags));
    PV_TRY(write_fleet_spec(reports, spec));
    fmt::print("{}\n", spec.slurm_job);
    fmt::print(stderr, "fleet: Slurm array job {}; see `patchvisor fleet status --reports {}`\n",
               spec.slurm_job, reports);
    return kExitOk;
}

std::string default_reports() {
    const std::time_t now = std::time(nullptr);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
    return std::string("fleet-") + stamp;
}

void add_submit_command(CLI::App& fleet, CommandResult& result) {
    auto* submit_command = fleet.add_subcommand(
        "submit",
        "Submit one Slurm array job: one task per image (or domain), each running "
        "`patchvisor patch --json-report REPORTS/task-N.json`; arguments after -- go to every "
        "`patchvisor patch` (e.g. -- --sandbox jail --timeout-s 900)");
    auto flags = std::make_shared<SubmitFlags>();
    flags->reports = default_reports();
    auto* list = submit_command->add_option("IMAGE-LIST", flags->list,
                                            "file naming one image per line ('#' comments)");
    auto* domains =
        submit_command->add_option("--domains", flags->domains, "libvirt domains, one per task")
            ->delimiter(',');
    submit_command->add_option("--connect", flags->connect, "libvirt URI of the domains")
        ->needs(domains);
    submit_command->add_option("--catalog", flags->catalog, "the catalog every task uses");
    submit_command->add_option("--reports", flags->reports,
                               "directory for the reports, on storage every node sees "
                               "(default: ./fleet-DATE-TIME)");
    submit_command->add_option("--max-running", flags->max_running,
                               "tasks running at once, fleet-wide (sbatch --array=...%N)");
    submit_command->add_option("--sbatch-arg", flags->sbatch_arguments,
                               "passed to sbatch (e.g. --sbatch-arg=--partition=vmhosts)");
    submit_command->add_flag("--wait", flags->wait, "return when every task has ended");
    submit_command->add_option("patch-arguments", flags->patch_arguments)->group("");
    submit_command->positionals_at_end(false);
    submit_command->parse_complete_callback([flags, list, domains] {
        if (flags->list.empty() && flags->domains.empty())
            throw CLI::RequiredError("IMAGE-LIST or --domains");
        if (flags->list.empty() || flags->domains.empty())
            return;
        // After --, CLI11 fills the positionals in order, so with --domains
        // the first patch argument lands in IMAGE-LIST: a flag is put back.
        if (!flags->list.starts_with("-"))
            throw CLI::ExcludesError(list->get_name(), domains->get_name());
        flags->patch_arguments.insert(flags->patch_arguments.begin(), flags->list);
        flags->list.clear();
    });
    submit_command->callback([&result, flags] { result.outcome = submit(*flags); });
}

}  // namespace

void add_fleet_command(CLI::App& app, CommandResult& result) {
    auto* fleet = app.add_subcommand("fleet", "Patch many images or domains as a Slurm job");
    fleet->require_subcommand(1);
    add_submit_command(*fleet, result);
    add_status_command(*fleet, result);
}

}  // namespace pv::cli
