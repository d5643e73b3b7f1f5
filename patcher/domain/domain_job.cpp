#include "patcher/domain/domain_job.hpp"

#include <filesystem>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "patcher/domain/install_gate.hpp"
#include "patcher/domain/libvirt_domain.hpp"

namespace pv::domain {

namespace {

std::string describe_disk(const DomainDisk& disk) {
    return fmt::format("{} ({})", disk.target, disk.source);
}

// The options of every writable disk, worked out before any job starts so
// that a disk the job cannot take fails the domain with nothing touched.
Result<std::vector<patcher::JobOptions>> plan_disks(const DomainJobRequest& request,
                                                    DomainJobResult& result) {
    const auto use = request.mode == patcher::JobMode::Patch ? DiskUse::Patch : DiskUse::Check;
    std::vector<patcher::JobOptions> plans;
    std::set<std::string> sources;
    for (auto& outcome : result.disks) {
        outcome.skipped = outcome.disk.skip_reason();
        if (outcome.skipped)
            continue;
        const auto format = PV_TRY(disk_format(outcome.disk, use));
        const auto path = std::filesystem::path(outcome.disk.source).lexically_normal().string();
        if (!sources.insert(path).second)
            return fail(make_error("patch domain " + request.name,
                                   "two of its disks are the same file " + path));
        auto options = PV_TRY(request.options_for(outcome.disk.source));
        options.declared_format = format;
        plans.push_back(std::move(options));
    }
    if (plans.empty())
        return fail(make_error("patch domain " + request.name,
                               "it has no writable disk (cdrom, floppy, read-only and "
                               "shareable disks are left alone)"));
    return plans;
}

// Patch mode: one thread per disk, all meeting at the install gate.
std::vector<patcher::JobReport> run_together(
    std::vector<patcher::JobOptions>& plans,
    std::vector<std::unique_ptr<patcher::JobObserver>>& observers,
    const std::vector<std::string>& names, const std::function<Result<void>()>& recheck) {
    InstallGate gate(names, recheck);
    std::vector<patcher::JobReport> reports(plans.size());
    {
        std::vector<std::jthread> workers;
        for (size_t i = 0; i < plans.size(); ++i) {
            plans[i].before_replace = [&gate, i] { return gate.arrive(i); };
            workers.emplace_back([&, i] {
                reports[i] = patcher::run_job(plans[i], *observers[i]);
                gate.ended(i, reports[i].result == patcher::JobResult::Failed);
            });
        }
    }
    return reports;
}

}  // namespace

bool DomainJobResult::partly_replaced() const {
    bool replaced = false;
    bool failed = false;
    for (const auto& outcome : disks) {
        if (!outcome.report)
            continue;
        replaced = replaced || outcome.report->result == patcher::JobResult::Patched;
        failed = failed || outcome.report->result == patcher::JobResult::Failed;
    }
    return replaced && failed;
}

Result<DomainJobResult> run_domain_job(const DomainJobRequest& request) {
    auto domain = PV_TRY(LibvirtDomain::open(request.uri, request.name));
    PV_TRY(require_shut_off(request.name, PV_TRY(domain.status())));
    DomainJobResult result;
    result.name = request.name;
    result.uri = domain.uri();
    result.uuid = PV_TRY(domain.uuid());
    for (auto& disk : PV_TRY(parse_domain_disks(PV_TRY(domain.inactive_xml()), request.name)))
        result.disks.push_back(DiskOutcome{std::move(disk), std::nullopt, std::nullopt});
    auto plans = PV_TRY(plan_disks(request, result));
    if (request.planned)
        request.planned(result);

    std::vector<std::unique_ptr<patcher::JobObserver>> observers;
    std::vector<std::string> names;
    for (const auto& outcome : result.disks)
        if (!outcome.skipped) {
            observers.push_back(request.observer_for(outcome.disk));
            names.push_back(describe_disk(outcome.disk));
        }
    std::vector<patcher::JobReport> reports;
    if (request.mode == patcher::JobMode::Patch) {
        // Runs once, on the last disk's thread, when every disk is locked by
        // its job and its target is written.
        const auto recheck = [&]() -> Result<void> {
            return require_shut_off(request.name, PV_TRY(domain.status()));
        };
        reports = run_together(plans, observers, names, recheck);
    } else {
        for (size_t i = 0; i < plans.size(); ++i)
            reports.push_back(patcher::run_job(plans[i], *observers[i]));
    }
    size_t next = 0;
    for (auto& outcome : result.disks)
        if (!outcome.skipped)
            outcome.report = std::move(reports[next++]);
    return result;
}

}  // namespace pv::domain
