#include "patcher/job/agent_steps.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "patcher/job/session_guest_files.hpp"

namespace pv::patcher {

namespace {

// A package counts as installed when its package manager says so: dpkg's
// Status ends in "installed" ("install ok installed"; not "config-files"
// or "half-installed"), rpm reports "installed".
bool is_installed(const wire::Package& package) {
    const std::string& status = package.status();
    return status == "installed" || status.ends_with(" installed");
}

Result<PackageFamily> family_of(const wire::InspectResult& result) {
    switch (result.package_manager()) {
        case wire::PACKAGE_MANAGER_DPKG:
            return PackageFamily::deb;
        case wire::PACKAGE_MANAGER_RPM:
            return PackageFamily::rpm;
        default:
            return fail(make_error("inspect the image",
                                   "the agent found no package manager "
                                   "(neither dpkg nor rpm) in the guest"));
    }
}

std::string plan_summary(const Detection& detection) {
    if (detection.patches.empty())
        return detection.kept_back.empty()
                   ? "no patch applies"
                   : fmt::format("no patch applies; {} kept back", detection.kept_back.size());
    std::string summary = fmt::format("{} patch{}:", detection.patches.size(),
                                      detection.patches.size() == 1 ? "" : "es");
    for (const auto& patch : detection.patches)
        summary += fmt::format(" {} {} -> {},", patch.package.name,
                               patch.installed_version.empty() ? "(new)" : patch.installed_version,
                               patch.package.version);
    summary.pop_back();
    if (!detection.kept_back.empty())
        summary += fmt::format("; {} kept back", detection.kept_back.size());
    return summary;
}

std::string seconds_text(std::chrono::milliseconds duration) {
    return fmt::format("{:g} s", std::chrono::duration<double>(duration).count());
}

const char* stream_tag(wire::Log::Stream stream) {
    switch (stream) {
        case wire::Log::STREAM_STDOUT:
            return "[stdout] ";
        case wire::Log::STREAM_STDERR:
            return "[stderr] ";
        default:
            return "[agent] ";
    }
}

}  // namespace

void AgentSteps::enter(const std::string& phase, std::chrono::milliseconds limit) {
    m_clock.start(phase);
    const auto phase_deadline = std::chrono::steady_clock::now() + limit;
    if (phase_deadline < m_job_deadline)
        m_session->set_deadline(phase_deadline,
                                "the " + phase + " phase's limit of " + seconds_text(limit));
    else
        m_session->set_deadline(
            m_job_deadline,
            "the job's limit of " + seconds_text(m_options.timeout) + " (--timeout-s)");
}

template <class T>
Result<T> AgentSteps::explained(Result<T> result) {
    // EPIPE: the stream ended (framing.cpp, session.cpp); how the agent
    // ended tells a crash from a deliberate close.
    if (result || result.error().code != EPIPE || !m_sandbox)
        return result;
    const auto outcome = m_sandbox->wait(std::chrono::seconds(1));
    Error error = result.error();
    error.detail += "; the agent " + outcome.describe() + " (see " + m_sandbox->log_path() + ")";
    return fail(std::move(error));
}

void AgentSteps::write_log(wire::Log::Stream stream, const std::string& line) {
    m_observer.agent_log(line);
    if (!m_log.valid())
        return;
    const std::string text = stream_tag(stream) + line + "\n";
    // Best effort: a full disk must not fail the patch over its log.
    if (::write(m_log.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        m_log.reset();
}

Result<void> AgentSteps::start(const sandbox::SandboxChoice& choice, img::BlockDevice& overlay,
                               const std::string& log_path) {
    m_clock.start("sandbox");
    m_job_deadline = std::chrono::steady_clock::now() + m_options.timeout;
    sandbox::SandboxOptions options;
    options.agent_path = m_options.agent_path;
    options.log_path = log_path;
    options.timeout = m_options.timeout;
    m_sandbox = PV_TRY(sandbox::start_sandbox(choice, overlay, options));
    m_session = PV_TRY(Session::from_fd(m_sandbox->take_stream()));
    // The sandbox opened the log for appending; the agent's own output and
    // these lines interleave by whole writes.
    m_log = Fd(::open(m_sandbox->log_path().c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
    m_session->on_log(
        [this](wire::Log::Stream stream, const std::string& line) { write_log(stream, line); });
    m_session->on_progress([this](const std::string& phase, uint64_t done, uint64_t total) {
        m_observer.progress(phase, done, total);
    });
    m_clock.finish(m_sandbox->describe());

    enter("hello", m_options.phase_timeouts.hello);
    const auto hello = PV_TRY(explained(m_session->hello()));
    m_report.agent_version = hello.agent_version();
    m_report.agent_kernel = hello.kernel();
    m_clock.finish(
        fmt::format("agent {} on {} ({})", hello.agent_version(), hello.kernel(), hello.sandbox()));
    return {};
}

Result<std::vector<InstalledPackage>> AgentSteps::inventory() {
    const auto result = PV_TRY(explained(m_session->inspect()));
    m_family = PV_TRY(family_of(result));
    m_report.package_manager = family_name(m_family);
    for (const auto& [key, value] : result.os_release())
        m_report.os_release[key] = value;
    std::vector<InstalledPackage> installed;
    for (const auto& package : result.packages())
        if (is_installed(package))
            installed.push_back({package.name(), package.version(), package.architecture()});
    m_report.packages_installed = installed.size();
    return installed;
}

Result<Detection> AgentSteps::inspect_and_detect(PatchSource& source) {
    enter("inspect", m_options.phase_timeouts.inspect);
    const auto installed = PV_TRY(inventory());
    m_clock.finish(fmt::format("{}, {} packages installed ({})", m_report.os_name(),
                               installed.size(), m_report.package_manager));

    SessionGuestFiles files(*m_session);
    const GuestView guest{m_family, installed, m_report.os_release, files};
    if (source.uses_guest_files()) {
        enter("indexes", m_options.phase_timeouts.inspect);
        m_clock.finish(PV_TRY(explained(source.prepare(guest))));
    }
    m_clock.start("detect");
    auto detection = PV_TRY(source.detect(guest));
    for (const auto& warning : detection.warnings)
        m_observer.agent_log("detect: " + warning);
    m_clock.finish(plan_summary(detection));
    return detection;
}

Result<void> AgentSteps::stage_and_apply(const Detection& detection) {
    enter("stage", m_options.phase_timeouts.stage);
    std::vector<std::string> files;
    uint64_t bytes = 0;
    for (const auto& patch : detection.patches) {
        PV_TRY(explained(m_session->stage(patch.package.path)));
        files.push_back(std::filesystem::path(patch.package.path).filename().string());
        bytes += patch.package.size;
    }
    m_clock.finish(
        fmt::format("{} files, {} bytes, SHA-256 verified by the agent", files.size(), bytes));

    enter("apply", m_options.phase_timeouts.apply);
    const auto applied = PV_TRY(explained(m_session->apply(files)));
    m_clock.finish(fmt::format("{} exited {}",
                               family_name(m_family) == std::string("deb") ? "dpkg -i" : "rpm -U",
                               applied.exit_code));
    return {};
}

Result<void> AgentSteps::finish() {
    enter("finish", m_options.phase_timeouts.finish);
    const auto finish_deadline = std::chrono::steady_clock::now() + m_options.phase_timeouts.finish;
    PV_TRY(explained(m_session->finish()));
    // The agent must end on its own: within 30 s, and what is left of the
    // phase.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::min(finish_deadline, m_job_deadline) - std::chrono::steady_clock::now());
    const auto grace = std::clamp(left, std::chrono::milliseconds(0),
                                  std::chrono::milliseconds(std::chrono::seconds(30)));
    const auto outcome = m_sandbox->wait(grace);
    PV_TRY(m_sandbox->teardown());
    if (!outcome.succeeded())
        return fail(make_error("end the sandbox", "the agent " + outcome.describe() + "; see " +
                                                      m_sandbox->log_path()));
    m_clock.finish("agent " + outcome.describe() + ", sandbox torn down");
    return {};
}

}  // namespace pv::patcher
