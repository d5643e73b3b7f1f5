// patchvisor batch: N sandboxes in parallel, a live status line per image,
// a final table, and the throughput figures (images per minute, per-phase
// p50/p95) that people benchmark patch runs by.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patcher/cli/commands.hpp"
#include "patcher/cli/gc_scan.hpp"
#include "patcher/cli/job_flags.hpp"
#include "patcher/cli/phase_stats.hpp"

namespace pv::cli {

namespace {

// One status line per image, redrawn in place on a terminal; elsewhere a
// line is printed as each image finishes.
class StatusBoard {
  public:
    explicit StatusBoard(const std::vector<std::string>& images)
        : m_lines(images.size(), "waiting"),
          m_images(images),
          m_live(::isatty(STDERR_FILENO) == 1) {}

    void set(size_t index, std::string status) {
        std::lock_guard lock(m_mutex);
        m_lines[index] = std::move(status);
    }

    void finished(size_t index, const patcher::JobReport& report) {
        std::lock_guard lock(m_mutex);
        m_lines[index] = fmt::format("{} ({:.1f} s)", patcher::result_name(report.result),
                                     report.total_seconds());
        if (!m_live)
            fmt::print(stderr, "{}: {}\n", m_images[index], m_lines[index]);
    }

    void draw(bool first) {
        if (!m_live)
            return;
        std::lock_guard lock(m_mutex);
        if (!first)
            fmt::print(stderr, "\033[{}A", m_lines.size());
        for (size_t i = 0; i < m_lines.size(); ++i)
            fmt::print(stderr, "\r\033[K{:<40} {}\n", m_images[i], m_lines[i]);
        std::fflush(stderr);
    }

  private:
    std::mutex m_mutex;
    std::vector<std::string> m_lines;
    const std::vector<std::string>& m_images;
    bool m_live;
};

class BatchObserver final : public patcher::JobObserver {
  public:
    BatchObserver(StatusBoard& board, size_t index) : m_board(board), m_index(index) {}
    void phase_started(const std::string& phase) override { m_board.set(m_index, phase); }
    void progress(const std::string& phase, uint64_t done, uint64_t total) override {
        if (total > 0)
            m_board.set(m_index, fmt::format("{} {}%", phase, 100 * done / total));
    }

  private:
    StatusBoard& m_board;
    size_t m_index;
};

nlohmann::json summarize(const std::vector<patcher::JobReport>& reports, unsigned jobs,
                         double wall_seconds) {
    std::map<std::string, std::vector<double>> phases;
    std::map<std::string, int> results;
    for (const auto& report : reports) {
        ++results[patcher::result_name(report.result)];
        for (const auto& phase : report.phases)
            phases[phase.name].push_back(phase.seconds);
    }
    const auto phase_json = phase_figures(std::move(phases));
    return {{"images", reports.size()},
            {"jobs", jobs},
            {"wall_seconds", wall_seconds},
            {"images_per_minute", wall_seconds > 0 ? 60.0 * reports.size() / wall_seconds : 0},
            {"results", results},
            {"phases", phase_json}};
}

void print_table(FILE* out, const std::vector<patcher::JobReport>& reports,
                 const nlohmann::json& summary) {
    fmt::print(out, "\n{:<40} {:<16} {:>7} {:>9}  {}\n", "image", "result", "patches", "seconds",
               "os");
    for (const auto& report : reports)
        fmt::print(out, "{:<40} {:<16} {:>7} {:>9.1f}  {}\n", report.image,
                   patcher::result_name(report.result), report.plan.size(), report.total_seconds(),
                   report.result == patcher::JobResult::Failed ? report.error : report.os_name());
    fmt::print(out, "\n{} images in {:.1f} s with {} jobs: {:.2f} images/minute\n",
               summary["images"].get<size_t>(), summary["wall_seconds"].get<double>(),
               summary["jobs"].get<unsigned>(), summary["images_per_minute"].get<double>());
    // Phases in the order jobs run them, as first seen.
    std::vector<std::string> order;
    for (const auto& report : reports)
        for (const auto& phase : report.phases)
            if (std::find(order.begin(), order.end(), phase.name) == order.end())
                order.push_back(phase.name);
    print_phase_table(out, order, summary["phases"]);
}

Result<int> run_batch(const JobFlags& flags, unsigned jobs) {
    std::vector<patcher::JobOptions> options;
    for (const auto& image : flags.images)
        options.push_back(PV_TRY(job_options(flags, image, patcher::JobMode::Patch)));
    note_leftovers(flags.work_dir);
    std::vector<patcher::JobReport> reports(options.size());
    StatusBoard board(flags.images);
    std::atomic<size_t> next{0};
    const auto started = std::chrono::steady_clock::now();
    board.draw(true);
    {
        std::vector<std::jthread> workers;
        for (unsigned worker = 0; worker < std::max(1u, jobs); ++worker)
            workers.emplace_back([&] {
                for (size_t i = next++; i < options.size(); i = next++) {
                    BatchObserver observer(board, i);
                    reports[i] = patcher::run_job(options[i], observer);
                    board.finished(i, reports[i]);
                }
            });
        std::jthread drawer([&board](std::stop_token stop) {
            while (!stop.stop_requested()) {
                std::this_thread::sleep_for(std::chrono::milliseconds(250));
                board.draw(false);
            }
        });
        for (auto& worker : workers)
            worker.join();
    }
    board.draw(false);
    const std::chrono::duration<double> wall = std::chrono::steady_clock::now() - started;
    const auto summary = summarize(reports, jobs, wall.count());
    nlohmann::json json = {{"summary", summary}, {"reports", nlohmann::json::array()}};
    for (const auto& report : reports)
        json["reports"].push_back(patcher::to_json(report));
    if (!flags.json_report.empty()) {
        std::ofstream out(flags.json_report);
        out << json.dump(2) << "\n";
        if (!out)
            return fail(make_error("write the JSON report " + flags.json_report, "write failed"));
    }
    print_table(flags.json ? stderr : stdout, reports, summary);
    if (flags.json)
        fmt::print("{}\n", json.dump());
    const bool failed = std::any_of(reports.begin(), reports.end(), [](const auto& report) {
        return report.result == patcher::JobResult::Failed;
    });
    return failed ? kExitFailed : kExitOk;
}

}  // namespace

void add_batch_command(CLI::App& app, CommandResult& result) {
    auto* batch = app.add_subcommand("batch",
                                     "Patch many images in parallel and report "
                                     "throughput (images/minute, phase p50/p95)");
    auto flags = std::make_shared<JobFlags>();
    auto jobs = std::make_shared<unsigned>(1);
    add_job_flags(*batch, *flags, FlagSet::Batch);
    batch->add_option("-j,--jobs", *jobs, "sandboxes running at once")->check(CLI::Range(1, 64));
    batch->callback([&result, flags, jobs] { result.outcome = run_batch(*flags, *jobs); });
}

}  // namespace pv::cli
