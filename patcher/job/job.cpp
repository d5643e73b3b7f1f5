#include "patcher/job/job.hpp"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "imgfmt/commit.hpp"
#include "imgfmt/lock.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "patcher/detect/catalog.hpp"
#include "patcher/detect/detect.hpp"
#include "patcher/job/agent_steps.hpp"
#include "patcher/job/job_record.hpp"
#include "patcher/job/phase_clock.hpp"

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
    auto base = PV_TRY(img::open_image(image, format, img::Access::ReadOnly, img::Backing::Refuse));
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
    return img::Qcow2Image::open(path, img::Access::ReadWrite, img::Backing::Allow);
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

void record_plan(const Detection& detection, JobReport& report) {
    std::map<std::string, AdvisoryReport> advisories;
    for (const auto& patch : detection.patches) {
        PackageChange change{patch.package.name,
                             patch.installed_architecture,
                             patch.installed_version,
                             patch.package.version,
                             {}};
        for (const auto& advisory : patch.advisories) {
            change.advisories.push_back(advisory.id);
            advisories.emplace(advisory.id, AdvisoryReport{advisory.id, advisory.cves});
        }
        report.packages.push_back(std::move(change));
    }
    for (auto& [id, advisory] : advisories)
        report.advisories.push_back(std::move(advisory));
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
    const auto catalog = PV_TRY(load_catalog(options.catalog, CatalogPolicy::strict));
    clock.finish(fmt::format("{} package files, {} advisories", catalog.packages.size(),
                             catalog.advisories.size()));

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
    const auto detection = PV_TRY(agent.inspect_and_detect(catalog));
    record_plan(detection, report);
    if (detection.patches.empty() || options.mode == JobMode::Check) {
        PV_TRY(agent.finish());
        if (detection.patches.empty())
            return JobResult::NothingToDo;
        return JobResult::MissingPatches;
    }
    PV_TRY(agent.stage_and_apply(detection));
    PV_TRY(agent.verify(detection));
    PV_TRY(agent.finish());
    if (sandbox::overlay_access(choice.kind) == sandbox::OverlayAccess::HandedOver)
        overlay = PV_TRY(reopen_overlay(std::move(overlay)));
    PV_TRY(overlay->flush());

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
