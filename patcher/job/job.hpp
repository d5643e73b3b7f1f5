#pragma once

// The patch job (DESIGN.md, the five steps): lock → overlay → sandbox →
// Hello → Inspect → detect → Stage → Apply → Finish → the host verifies the
// overlay's package database against the plan → commit → replace. Until the
// commit's rename the original is only read; any failure leaves it
// byte-identical.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "imgfmt/image.hpp"
#include "patcher/job/report.hpp"
#include "patcher/repo/repo_options.hpp"
#include "patcher/sandbox/sandbox.hpp"

namespace pv::patcher {

enum class JobMode {
    Patch,  // patch and commit
    Check,  // detection only: nothing is written
};

// Each agent phase has its own deadline, inside the job's `timeout`; the
// phase's requests also keep their per-request ones (patcher/session.hpp).
struct PhaseTimeouts {
    std::chrono::milliseconds hello = std::chrono::seconds(30);
    std::chrono::milliseconds inspect = std::chrono::seconds(120);
    std::chrono::milliseconds stage = std::chrono::seconds(600);
    std::chrono::milliseconds apply = std::chrono::seconds(900);
    // Finish, and the agent ending on its own afterwards.
    std::chrono::milliseconds finish = std::chrono::seconds(120);
    // The host's own read of the overlay's package database, after the
    // sandbox has ended.
    std::chrono::milliseconds verify = std::chrono::seconds(120);
};

struct JobOptions {
    JobMode mode = JobMode::Patch;
    std::string image;
    std::string catalog;                    // a folder catalog, or:
    std::optional<repo::RepoOptions> repo;  // a Debian-style repository (--repo)
    sandbox::SandboxRequest sandbox = sandbox::SandboxRequest::Auto;
    std::optional<std::string> output;  // default: replace the original in place
    bool keep_backup = false;
    std::optional<img::Format> format;   // default: the original's
    std::chrono::seconds timeout{1800};  // the whole sandbox session
    PhaseTimeouts phase_timeouts;
    std::string work_dir;    // overlays and agent logs
    std::string agent_path;  // the pv-agent binary
    // The original's format when the caller knows it (a libvirt domain's
    // <driver type>): the image is opened as that and never probed, and the
    // target keeps it unless `format` says otherwise.
    std::optional<img::Format> declared_format;
    // Called when the patched target is written and durable, just before it
    // replaces the original; an error fails the job in its commit phase with
    // the original untouched (img::CommitOptions::before_install).
    std::function<Result<void>()> before_replace;
};

// Hears what the job does as it does it (the CLI draws phase lines and
// progress bars; batch draws one status line per image).
class JobObserver {
  public:
    virtual ~JobObserver() = default;
    virtual void phase_started(const std::string& /*phase*/) {}
    virtual void phase_finished(const PhaseTiming& /*timing*/, const std::string& /*detail*/) {}
    virtual void progress(const std::string& /*phase*/, uint64_t /*done*/, uint64_t /*total*/) {}
    virtual void agent_log(const std::string& /*line*/) {}
    // The sandbox chosen and why; the jail is reported loudly.
    virtual void sandbox_chosen(const std::string& /*kind*/, const std::string& /*reason*/) {}
};

// Runs one job. Never throws; a failure is a report with result Failed and
// the reason in report.error.
[[nodiscard]] JobReport run_job(const JobOptions& options, JobObserver& observer);

}  // namespace pv::patcher
