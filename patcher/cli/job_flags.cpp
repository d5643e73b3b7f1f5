#include "patcher/cli/job_flags.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patcher/cli/json_file.hpp"

namespace pv::cli {

namespace {

// pv-agent: --agent, $PV_AGENT, next to patchvisor, in the build tree, or
// where cmake --install puts it (PREFIX/lib/patchvisor, any prefix).
Result<std::string> find_agent(const std::string& flag) {
    if (!flag.empty())
        return flag;
    if (const char* variable = std::getenv("PV_AGENT"); variable != nullptr && *variable != 0)
        return std::string(variable);
    std::error_code error;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", error).parent_path();
    for (const auto& candidate :
         {self / "pv-agent", self / "../../agent/pv-agent", self / "../lib/patchvisor/pv-agent",
          std::filesystem::path("/usr/lib/patchvisor/pv-agent")}) {
        if (::access(candidate.c_str(), X_OK) == 0)
            return candidate.lexically_normal().string();
    }
    return fail(make_error("find pv-agent",
                           "not next to patchvisor nor in the build tree; "
                           "pass --agent PATH or set PV_AGENT"));
}

// The --repo flags; the others need --repo, and exactly one of --catalog
// and --repo is given (bad usage, exit 2, otherwise).
void add_repo_flags(CLI::App& command, CLI::Option* catalog, JobFlags& flags) {
    auto* repo =
        command.add_option("--repo", flags.repo,
                           "a Debian-style repository (DIR or file:URI with dists/), signed; "
                           "resolved against the image by libapt-pkg");
    repo->excludes(catalog);
    command
        .add_option("--suite", flags.suites,
                    "dists/SUITE to use (repeatable; default: the guest's CODENAME, "
                    "CODENAME-updates and CODENAME-security the repository has)")
        ->needs(repo);
    command
        .add_option("--component", flags.components,
                    "component to use (repeatable; default: those the Release lists)")
        ->needs(repo);
    command
        .add_option("--keyring", flags.keyring,
                    "the only keyring trusted for the repository (default: the guest's "
                    "/etc/apt/trusted.gpg(.d) and /usr/share/keyrings)")
        ->needs(repo);
    command
        .add_flag("--ignore-valid-until", flags.ignore_valid_until,
                  "accept a Release whose Valid-Until has passed (an old offline snapshot)")
        ->needs(repo);
    command
        .add_option("--upgrade", flags.upgrade,
                    "security (default: only versions from a security suite) or full")
        ->check(CLI::IsMember({"security", "full"}))
        ->needs(repo);
    command
        .add_option("--advisories", flags.advisories,
                    "Debian security tracker JSON or OSV dump naming what updates fix")
        ->needs(repo);
    command.parse_complete_callback([&flags] {
        if (flags.catalog.empty() == flags.repo.empty())
            throw CLI::ValidationError("--catalog/--repo",
                                       "give exactly one of --catalog DIR and --repo DIR");
    });
}

std::optional<patcher::repo::RepoOptions> repo_options(const JobFlags& flags) {
    if (flags.repo.empty())
        return std::nullopt;
    patcher::repo::RepoOptions options;
    options.location = flags.repo;
    options.suites = flags.suites;
    options.components = flags.components;
    if (!flags.keyring.empty())
        options.keyring = std::filesystem::absolute(flags.keyring).string();
    if (!flags.advisories.empty())
        options.advisories = std::filesystem::absolute(flags.advisories).string();
    options.ignore_valid_until = flags.ignore_valid_until;
    options.upgrade = flags.upgrade == "full" ? patcher::repo::UpgradeMode::full
                                              : patcher::repo::UpgradeMode::security;
    return options;
}

}  // namespace

void add_job_flags(CLI::App& command, JobFlags& flags, FlagSet set) {
    command.add_option("IMAGE", flags.images, "disk images (raw, qcow2, qcow)")->required();
    auto* catalog = command.add_option(
        "--catalog", flags.catalog, "directory of .deb/.rpm files and manifest.json (or --repo)");
    add_repo_flags(command, catalog, flags);
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
    options.repo = repo_options(flags);
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
