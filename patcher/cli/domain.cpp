#include "patcher/cli/domain.hpp"

#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patcher/cli/commands.hpp"
#include "patcher/cli/gc_scan.hpp"
#include "patcher/cli/job_output.hpp"
#include "patcher/cli/json_file.hpp"
#include "patcher/domain/domain_job.hpp"

namespace pv::cli {

namespace {

// The disks' jobs run at once, so each line names its disk, and lines are
// written whole under one lock; no progress bars.
class DiskObserver final : public patcher::JobObserver {
  public:
    DiskObserver(FILE* out, std::mutex& mutex, std::string disk, bool verbose)
        : m_out(out), m_mutex(mutex), m_disk(std::move(disk)), m_verbose(verbose) {}

    void phase_finished(const patcher::PhaseTiming& timing, const std::string& detail) override {
        std::lock_guard lock(m_mutex);
        fmt::print(m_out, "  {:<5} {:<8} {:7.2f} s  {}\n", m_disk, timing.name, timing.seconds,
                   detail);
        std::fflush(m_out);
    }
    void agent_log(const std::string& line) override {
        if (!m_verbose)
            return;
        std::lock_guard lock(m_mutex);
        fmt::print(m_out, "    {} | {}\n", m_disk, line);
    }
    void sandbox_chosen(const std::string& kind, const std::string& reason) override {
        std::lock_guard lock(m_mutex);
        if (kind == "jail")
            fmt::print(stderr,
                       "patchvisor: NOTE: {}: jail sandbox (weaker isolation than the microVM: "
                       "the host kernel mounts the guest filesystem): {}\n",
                       m_disk, reason);
        else
            fmt::print(m_out, "  {:<5} sandbox: {} ({})\n", m_disk, kind, reason);
    }

  private:
    FILE* m_out;
    std::mutex& m_mutex;
    std::string m_disk;
    bool m_verbose;
};

nlohmann::json domain_json(const domain::DomainJobResult& result) {
    nlohmann::json reports = nlohmann::json::array();
    for (const auto& outcome : result.disks) {
        if (!outcome.report)
            continue;
        auto json = patcher::to_json(*outcome.report);
        json["domain"] = {{"name", result.name},
                          {"uuid", result.uuid},
                          {"uri", result.uri},
                          {"disk", outcome.disk.target}};
        reports.push_back(std::move(json));
    }
    return reports;
}

// The report of a domain the job refused before any disk's job: one failed
// entry in phase "domain", without an image.
nlohmann::json refused_json(const DomainFlags& domain, const Error& error) {
    patcher::JobReport report;
    report.image = "";
    report.result = patcher::JobResult::Failed;
    report.error = error.message();
    report.failed_phase = "domain";
    auto json = patcher::to_json(report);
    json["domain"] = {{"name", domain.name}, {"uri", domain.uri}};
    return nlohmann::json::array({json});
}

void print_disks(FILE* out, const domain::DomainJobResult& result) {
    for (const auto& outcome : result.disks) {
        if (outcome.skipped)
            fmt::print(out, "  disk {} {}: left alone ({})\n", outcome.disk.target,
                       outcome.disk.source.empty() ? "(no source)" : outcome.disk.source,
                       *outcome.skipped);
        else
            fmt::print(out, "  disk {} {} ({})\n", outcome.disk.target, outcome.disk.source,
                       outcome.disk.driver_type);
    }
}

}  // namespace

std::shared_ptr<DomainFlags> add_domain_flags(CLI::App& command) {
    auto flags = std::make_shared<DomainFlags>();
    auto* images = command.get_option("IMAGE");
    images->required(false);
    auto* domain = command.add_option("--domain", flags->name,
                                      "a shut-off libvirt domain: its writable disks, all or none");
    domain->excludes(images);
    command.add_option("--connect", flags->uri, "libvirt URI (default: libvirt's own)")
        ->needs(domain);
    for (const char* name : {"--output", "--format"})
        if (auto* option = command.get_option_no_throw(name))
            domain->excludes(option);
    command.parse_complete_callback([&command, flags] {
        if (flags->name.empty() && command.get_option("IMAGE")->count() == 0)
            throw CLI::RequiredError("IMAGE or --domain");
    });
    return flags;
}

Result<int> run_domain(const JobFlags& flags, const DomainFlags& domain, patcher::JobMode mode) {
    FILE* out = flags.json ? stderr : stdout;
    note_leftovers(flags.work_dir);
    std::mutex print_mutex;
    domain::DomainJobRequest request;
    request.uri = domain.uri;
    request.name = domain.name;
    request.mode = mode;
    request.options_for = [&](const std::string& image) { return job_options(flags, image, mode); };
    request.observer_for = [&](const domain::DomainDisk& disk) {
        return std::make_unique<DiskObserver>(out, print_mutex, disk.target, flags.verbose);
    };
    fmt::print(out, "{} domain {} with catalog {}\n",
               mode == patcher::JobMode::Check ? "checking" : "patching", domain.name,
               flags.catalog);
    request.planned = [out](const domain::DomainJobResult& planned) { print_disks(out, planned); };
    auto run = domain::run_domain_job(request);
    if (!run) {
        // A refused domain still gets its report, so a fleet can tell why.
        if (!flags.json_report.empty())
            PV_TRY(write_json_file(flags.json_report, refused_json(domain, run.error())));
        return fail(run.error());
    }
    const auto& result = *run;
    std::vector<patcher::JobReport> reports;
    for (const auto& outcome : result.disks)
        if (outcome.report) {
            print_summary(out, *outcome.report, mode);
            reports.push_back(*outcome.report);
        }
    if (result.partly_replaced())
        fmt::print(stderr,
                   "patchvisor: WARNING: domain {} is partly patched: a rename failed after "
                   "others succeeded; each disk is whole (original or verified patched "
                   "image); run the same command again to finish\n",
                   domain.name);
    const auto json = domain_json(result);
    if (!flags.json_report.empty())
        PV_TRY(write_json_file(flags.json_report, json));
    if (flags.json)
        fmt::print("{}\n", json.dump());
    return combined_exit_code(reports);
}

}  // namespace pv::cli
