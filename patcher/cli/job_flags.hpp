#pragma once

// The options patch, check and batch share, and the console observer that
// prints a job's phases.

#include <memory>
#include <string>
#include <vector>

#include <CLI/App.hpp>

#include "patcher/cli/progress.hpp"
#include "patcher/job/job.hpp"

namespace pv::cli {

struct JobFlags {
    std::vector<std::string> images;
    std::string catalog;
    // --repo and its flags (patcher/repo/repo_options.hpp).
    std::string repo;
    std::vector<std::string> suites;
    std::vector<std::string> components;
    std::string keyring;
    std::string advisories;
    std::string upgrade = "security";
    bool ignore_valid_until = false;
    std::string sandbox = "auto";
    std::string output;
    std::string format;
    std::string json_report;
    std::string work_dir = "/var/tmp/patchvisor";
    std::string agent;
    unsigned timeout_s = 1800;
    bool keep_backup = false;
    bool json = false;
    bool verbose = false;
};

enum class FlagSet { Check, Patch, Batch };

// Adds the flags of SET to COMMAND.
void add_job_flags(CLI::App& command, JobFlags& flags, FlagSet set);

// The job options for IMAGE; fails on a bad --format or --sandbox or when
// no pv-agent binary can be found.
[[nodiscard]] Result<patcher::JobOptions> job_options(const JobFlags& flags,
                                                      const std::string& image,
                                                      patcher::JobMode mode);

// Writes REPORTS (one object, or an array for several) to PATH.
[[nodiscard]] Result<void> write_json_report(const std::string& path,
                                             const std::vector<patcher::JobReport>& reports);

// Prints phase lines with durations, progress bars on a terminal, and the
// loud note about the jail. Lines go to standard error with --json (standard
// output then carries only JSON), to standard output otherwise.
class ConsoleObserver final : public patcher::JobObserver {
  public:
    ConsoleObserver(bool to_stderr, bool verbose)
        : m_out(to_stderr ? stderr : stdout), m_verbose(verbose) {}
    void phase_started(const std::string& phase) override;
    void phase_finished(const patcher::PhaseTiming& timing, const std::string& detail) override;
    void progress(const std::string& phase, uint64_t done, uint64_t total) override;
    void agent_log(const std::string& line) override;
    void sandbox_chosen(const std::string& kind, const std::string& reason) override;

  private:
    FILE* m_out;
    bool m_verbose;
    std::unique_ptr<ProgressBar> m_bar;
};

}  // namespace pv::cli
