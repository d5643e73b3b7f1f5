#pragma once

// The part of the job that talks to the agent in its sandbox: start,
// Hello, Inspect and detection, Stage and Apply, Finish. The agent is never
// asked whether Apply worked: the host verifies the overlay itself once the
// sandbox has ended (verification.hpp). The sandbox is torn down when this
// object goes away, whatever happened.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/fd.hpp"
#include "imgfmt/block_device.hpp"
#include "patcher/detect/detect.hpp"
#include "patcher/detect/patch_source.hpp"
#include "patcher/job/job.hpp"
#include "patcher/job/phase_clock.hpp"
#include "patcher/sandbox/sandbox.hpp"
#include "patcher/session.hpp"

namespace pv::patcher {

class AgentSteps {
  public:
    AgentSteps(const JobOptions& options, JobObserver& observer, PhaseClock& clock,
               JobReport& report)
        : m_options(options), m_observer(observer), m_clock(clock), m_report(report) {}

    [[nodiscard]] Result<void> start(const sandbox::SandboxChoice& choice,
                                     img::BlockDevice& overlay, const std::string& log_path);
    // Inspect, then the source's plan ("indexes" phase first for a
    // source that reads the guest's files).
    [[nodiscard]] Result<Detection> inspect_and_detect(PatchSource& source);
    [[nodiscard]] Result<void> stage_and_apply(const Detection& detection);
    // Finish, then the agent must end on its own with status 0.
    [[nodiscard]] Result<void> finish();
    // The guest's package family, as Inspect found it.
    [[nodiscard]] PackageFamily family() const { return m_family; }

  private:
    [[nodiscard]] Result<std::vector<InstalledPackage>> inventory();
    // Starts PHASE on the clock, with its own deadline for the session.
    void enter(const std::string& phase, std::chrono::milliseconds limit);
    // RESULT, with how the agent ended added when the stream to it ended.
    template <class T>
    [[nodiscard]] Result<T> explained(Result<T> result);
    // The agent's Log lines go to the observer and, bounded by the session's
    // log limit, to the agent log file after the agent's own output.
    void write_log(wire::Log::Stream stream, const std::string& line);

    const JobOptions& m_options;
    JobObserver& m_observer;
    PhaseClock& m_clock;
    JobReport& m_report;
    std::unique_ptr<sandbox::Sandbox> m_sandbox;
    std::optional<Session> m_session;
    std::chrono::steady_clock::time_point m_job_deadline;
    Fd m_log;
    PackageFamily m_family = PackageFamily::deb;
};

}  // namespace pv::patcher
