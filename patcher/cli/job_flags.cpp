#include "patcher/cli/job_flags.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patcher/cli/json_file.hpp"

namespace pv::cli {

namespace {

// pv-agent: --agent, $PV_AGENT, next to patchvisor, or in the build tree.
Result<std::string> find_agent(const std::string& flag) {
    if (!flag.empty())
        return flag;
    if (const char* variable = std::getenv("PV_AGENT"); variable != nullptr && *variable != 0)
        return std::string(variable);
    std::error_code error;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", error).parent_path();
    for (const auto& candidate : {self / "pv-agent", self / "../../agent/pv-agent",
                                  std::filesystem::path("/usr/lib/patchvisor/pv-agent")}) {
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate.lexically_normal().string();
    }
    return fail(make_error("find pv-agent",
                           "not next to patchvisor nor in the build tree; "
                           "pass --agent PATH or set PV_AGENT"));
}

}  // namespace

void add_job_flags(CLI::App& command, JobFlags& flags, FlagSet set) {
    command.add_option("IMAGE", flags.images, "disk images (raw, qcow2, qcow)")->required();
    command
        .add_option("--catalog", flags.catalog, "directory of .deb/.rpm files and manifest.json")
        ->required();
    command.add_option("--sandbox", flags.sandbox, "auto, jail or microvm")
        ->check(CLI::IsMember({"auto", "jail", "microvm"}));
    command.add_option("--timeout-s", flags.timeout_s, "deadline of each image's sandbox session");
    command.add_option("--json-report", flags.json_report, "write the JSON report here");
    command.add_flag("--json", flags.json, "print the JSON report on standard output");
    command.add_option("--work-dir", flags.work_dir, "where overlays and agent logs go");
    command.add_option("--agent", flags.agent, "the pv-agent binary");
    command.add_flag("-v,--verbose", flags.verbose, "show the package manager's output");
    if (set == FlagSet::Check)
        return;
    if (set == FlagSet::Patch)
        command.add_option("--output", flags.output,
                           "write the patched image here "
                           "(one IMAGE only; default: replace in place)");
    command.add_flag("--keep-backup", flags.keep_backup,
                     "when replacing, keep the original as IMAGE.pre-patch");
    command.add_option("--format", flags.format, "output format (default: the original's)")
        ->check(CLI::IsMember({"raw", "qcow2"}));
}

Result<patcher::JobOptions> job_options(const JobFlags& flags, const std::string& image,
                                        patcher::JobMode mode) {
    patcher::JobOptions options;
    options.mode = mode;
    options.image = image;
    options.catalog = flags.catalog;
    options.sandbox = PV_TRY(sandbox::parse_request(flags.sandbox));
    if (!flags.output.empty())
        options.output = std::filesystem::absolute(flags.output).string();
    if (!flags.format.empty())
        options.format = PV_TRY(img::parse_format(flags.format));
    options.keep_backup = flags.keep_backup;
    options.timeout = std::chrono::seconds(flags.timeout_s);
    options.work_dir = flags.work_dir;
    options.agent_path = PV_TRY(find_agent(flags.agent));
    return options;
}

Result<void> write_json_report(const std::string& path,
                               const std::vector<patcher::JobReport>& reports) {
    nlohmann::json json = nlohmann::json::array();
    for (const auto& report : reports)
        json.push_back(patcher::to_json(report));
    if (reports.size() == 1)
        json = json[0];
    return write_json_file(path, json);
}

void ConsoleObserver::phase_started(const std::string& phase) {
    if (phase == "stage" || phase == "commit")
        m_bar = std::make_unique<ProgressBar>(fmt::format("  {:<8}", phase));
}

void ConsoleObserver::phase_finished(const patcher::PhaseTiming& timing,
                                     const std::string& detail) {
    m_bar.reset();
    fmt::print(m_out, "  {:<8} {:7.2f} s  {}\n", timing.name, timing.seconds, detail);
    std::fflush(m_out);
}

void ConsoleObserver::progress(const std::string&, uint64_t done, uint64_t total) {
    if (m_bar)
        m_bar->update(done, total);
}

void ConsoleObserver::agent_log(const std::string& line) {
    if (m_verbose)
        fmt::print(m_out, "    | {}\n", line);
}

void ConsoleObserver::sandbox_chosen(const std::string& kind, const std::string& reason) {
    if (kind == "jail")
        fmt::print(stderr,
                   "patchvisor: NOTE: jail sandbox (weaker isolation than the microVM: "
                   "the host kernel mounts the guest filesystem): {}\n",
                   reason);
    else
        fmt::print(m_out, "  sandbox: {} ({})\n", kind, reason);
}

}  // namespace pv::cli
