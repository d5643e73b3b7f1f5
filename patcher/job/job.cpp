#include "patcher/job/job.hpp"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "imgfmt/commit.hpp"
#include "imgfmt/lock.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "patcher/detect/detect.hpp"
#include "patcher/detect/patch_source.hpp"
#include "patcher/job/agent_steps.hpp"
#include "patcher/job/job_record.hpp"
#include "patcher/job/phase_clock.hpp"
#include "patcher/job/verification.hpp"
#include "patcher/repo/apt_source.hpp"
#include "patcher/repo/indexes.hpp"
#include "patcher/repo/rpmmd/rpmmd_repository.hpp"
#include "patcher/repo/rpmmd/rpmmd_source.hpp"

namespace pv::patcher {

namespace {

// The overlay, the agent log and the intent record of one job, named after
// the image; the overlay and then the record are removed when the job ends,
// however it ends.
class JobFiles {
  public:
    // Writes the intent record (job_record.hpp) before any other file.
    static Result<JobFiles> create(const std::string& work_dir, const std::string& image,
                                   const std::string& target) {
        std::error_code error;
        std::filesystem::create_directories(work_dir, error);
        if (error)
            return fail(make_error("create the work directory " + work_dir, error.message()));
        static std::atomic<unsigned> counter{0};
        const auto stem = fmt::format(
            "{}/{}-{}-{}", std::filesystem::absolute(work_dir).lexically_normal().string(),
            std::filesystem::path(image).filename().string(), ::getpid(), counter++);
        JobRecord record{PV_TRY(current_process_identity()), image, target,
                         stem + ".overlay.qcow2"};
        PV_TRY(write_job_record(stem + kJobRecordSuffix, record));
        return JobFiles(stem + ".overlay.qcow2", stem + ".agent.log", stem + kJobRecordSuffix);
    }
    JobFiles(JobFiles&& other) noexcept
        : overlay(std::move(other.overlay)),
          agent_log(std::move(other.agent_log)),
          record(std::move(other.record)) {
        other.overlay.clear();
        other.record.clear();
    }
    ~JobFiles() {
        if (!overlay.empty())
            ::unlink(overlay.c_str());
        if (!record.empty())
            ::unlink(record.c_str());
    }

    std::string overlay;
    std::string agent_log;
    std::string record;

  private:
    JobFiles(std::string overlay_path, std::string log_path, std::string record_path)
        : overlay(std::move(overlay_path)),
          agent_log(std::move(log_path)),
          record(std::move(record_path)) {}
};

Result<std::unique_ptr<img::Qcow2Image>> make_overlay(const std::string& image, img::Format format,
                                                      const std::string& overlay_path) {
    auto base = PV_TRY(img::open_image(image, format, Access::ReadOnly, img::Backing::Refuse));
    return img::Qcow2Image::create_overlay(overlay_path, std::move(base), image, format);
}

// The microVM wrote the overlay file through its own imgfmt object, so
// ours caches stale metadata (sandbox.hpp, OverlayAccess::HandedOver). It
// was flushed before the hand-over and untouched since, so dropping it
// writes nothing; the file is then read afresh. Its backing file is the
// original, which make_overlay opened refusing backing files of its own.
Result<std::unique_ptr<img::Qcow2Image>> reopen_overlay(std::unique_ptr<img::Qcow2Image> stale) {
    const std::string path = stale->name();
    stale.reset();
    return img::Qcow2Image::open(path, Access::ReadWrite, img::Backing::Allow);
}

// The format the caller declared, checked against the header (a qcow2 disk
// whose file is not qcow2 is an error; a raw disk is raw whatever its first
// bytes say), else the one its magic shows.
Result<img::Format> original_format(const JobOptions& options, const std::string& image) {
    if (!options.declared_format)
        return img::detect_format(image);
    PV_TRY(img::inspect_image(image, *options.declared_format));
    return *options.declared_format;
}

std::unique_ptr<PatchSource> make_source(const JobOptions& options) {
    if (options.repo) {
        // A location that is not a directory is the apt source's error to report.
        const auto root = repo::repository_directory(options.repo->location);
        if (root && repo::is_rpmmd_repository(*root))
            return repo::make_rpmmd_source(*options.repo, *root, options.work_dir);
        return repo::make_apt_source(*options.repo, options.work_dir);
    }
    return make_catalog_source(options.catalog);
}

void record_plan(const Detection& detection, JobReport& report) {
    std::map<std::string, AdvisoryReport> advisories;
    for (const auto& patch : detection.patches) {
        // A new dependency has no version before.
        const bool is_new = patch.action == PatchAction::install;
        PlannedPackage planned{patch.package.name,
                               patch.package.architecture,
                               is_new ? std::nullopt : std::optional(patch.installed_version),
                               patch.package.version,
                               {},
                               action_name(patch.action),
                               patch.reason};
        for (const auto& advisory : patch.advisories) {
            planned.advisories.push_back(advisory.id);
            advisories.emplace(advisory.id, AdvisoryReport{advisory.id, advisory.cves});
        }
        report.plan.push_back(std::move(planned));
    }
    for (auto& [id, advisory] : advisories)
        report.advisories.push_back(std::move(advisory));
    for (const auto& kept : detection.kept_back)
        report.kept_back.push_back({kept.name, kept.architecture, kept.installed_version,
                                    kept.available_version, kept.reason});
}

std::vector<ExpectedPackage> expected_packages(const std::vector<PlannedPackage>& plan) {
    std::vector<ExpectedPackage> expected;
    for (const auto& planned : plan)
        expected.push_back({planned.name, planned.architecture, planned.to});
    return expected;
}

guestfs::DatabaseKind database_of(PackageFamily family) {
    return family == PackageFamily::rpm ? guestfs::DatabaseKind::Rpm : guestfs::DatabaseKind::Dpkg;
}

// The verify phase: the host reads the flushed overlay's package database
// itself; the agent's account of Apply decides nothing.
Result<void> verify(const JobOptions& options, PhaseClock& clock, PackageFamily family,
                    const std::string& overlay_path, JobReport& report) {
    clock.start("verify");
    const auto database =
        PV_TRY(verify_on_host(overlay_path, database_of(family), expected_packages(report.plan),
                              options.phase_timeouts.verify));
    for (const auto& planned : report.plan)
        if (const auto* found = find_package(database, planned.name, planned.architecture))
            report.measured.push_back({found->name, found->architecture, found->version});
    report.measured_from = database.location;
    clock.finish(fmt::format("{} package{} at the planned version, read by the host from {}",
                             report.plan.size(), report.plan.size() == 1 ? "" : "s",
                             database.location));
    return {};
}

Result<JobResult> run_steps(const JobOptions& options, JobObserver& observer, JobReport& report) {
    PhaseClock clock(observer, report);
    const auto image = std::filesystem::absolute(options.image).lexically_normal().string();
    report.image = image;

    clock.start("lock");
    const auto lock = PV_TRY(img::ImageLock::acquire(image));
    const auto format = PV_TRY(original_format(options, image));
    report.format = std::string(img::format_name(format));
    clock.finish(fmt::format("{} image locked", report.format));

    clock.start("catalog");
    const auto source = make_source(options);
    clock.finish(PV_TRY(source->load()));

    // Chosen before any file is written: a forced microvm that cannot run
    // here fails now.
    const auto choice = PV_TRY(sandbox::choose_sandbox(options.sandbox));
    report.sandbox_kind = std::string(sandbox::kind_name(choice.kind));
    report.sandbox_reason = choice.reason;
    observer.sandbox_chosen(report.sandbox_kind, choice.reason);

    clock.start("overlay");
    auto files = PV_TRY(JobFiles::create(options.work_dir, image, options.output.value_or(image)));
    auto overlay = PV_TRY(make_overlay(image, format, files.overlay));
    report.agent_log = files.agent_log;
    clock.finish(files.overlay);

    AgentSteps agent(options, observer, clock, report);
    PV_TRY(agent.start(choice, *overlay, files.agent_log));
    const auto detection = PV_TRY(agent.inspect_and_detect(*source));
    record_plan(detection, report);
    if (detection.patches.empty() || options.mode == JobMode::Check) {
        PV_TRY(agent.finish());
        if (detection.patches.empty())
            return JobResult::NothingToDo;
        return JobResult::MissingPatches;
    }
    PV_TRY(agent.stage_and_apply(detection));
    PV_TRY(agent.finish());
    if (sandbox::overlay_access(choice.kind) == sandbox::OverlayAccess::HandedOver)
        overlay = PV_TRY(reopen_overlay(std::move(overlay)));
    PV_TRY(overlay->flush());
    PV_TRY(verify(options, clock, agent.family(), overlay->name(), report));

    clock.start("commit");
    img::CommitOptions commit_options;
    commit_options.format = options.format ? options.format : options.declared_format;
    commit_options.before_install = options.before_replace;
    commit_options.output = options.output;
    commit_options.keep_backup = options.keep_backup;
    commit_options.progress = [&observer](uint64_t done, uint64_t total) {
        observer.progress("commit", done, total);
    };
    const auto committed = PV_TRY(img::commit_locked(*overlay, lock, commit_options));
    report.output = committed.target;
    report.backup = committed.backup;
    clock.finish(fmt::format("{} {} written to {}", committed.bytes_copied,
                             img::format_name(committed.format), committed.target));
    return JobResult::Patched;
}

}  // namespace

JobReport run_job(const JobOptions& options, JobObserver& observer) {
    JobReport report;
    report.image = options.image;
    try {
        auto result = run_steps(options, observer, report);
        if (result) {
            report.result = *result;
        } else {
            report.result = JobResult::Failed;
            report.error = result.error().message();
        }
    } catch (const std::exception& exception) {
        report.result = JobResult::Failed;
        report.error = std::string("internal error: ") + exception.what();
    }
    return report;
}

}  // namespace pv::patcher
