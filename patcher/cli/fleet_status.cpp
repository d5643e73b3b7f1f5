// patchvisor fleet status: the reports of one or more fleets gathered into
// one table and one JSON document — results counted, per-phase p50/p95,
// and images per minute over the fleet's wall time (first task start to
// last task end, from the tasks' end records). Reports are read
// defensively: only "result", "phases", "image", "error", "packages" and
// "total_seconds" are used, and a missing or odd field counts as absent.

#include <algorithm>
#include <chrono>
#include <fstream>
#include <limits>
#include <map>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patcher/cli/fleet.hpp"
#include "patcher/cli/fleet_spec.hpp"
#include "patcher/cli/phase_stats.hpp"

namespace pv::cli {

namespace {

using nlohmann::json;

struct StatusFlags {
    std::vector<std::string> reports;
    bool json_output = false;
    bool wait = false;
    unsigned timeout_s = 0;
};

struct TaskRow {
    std::string fleet;
    size_t index = 0;
    std::string target;
    std::string result = "pending";
    size_t patches = 0;
    double seconds = 0;
    std::string host;
    std::string error;
    std::optional<double> started, ended;
    std::vector<json> images;  // the task's per-image reports
};

std::optional<json> read_json(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        return std::nullopt;
    auto parsed = json::parse(in, nullptr, false);
    if (parsed.is_discarded())
        return std::nullopt;
    return parsed;
}

template <class T>
T field(const json& object, const char* name, T fallback) {
    if (!object.is_object() || !object.contains(name))
        return fallback;
    const auto& value = object[name];
    if constexpr (std::is_same_v<T, std::string>)
        return value.is_string() ? value.get<std::string>() : fallback;
    else
        return value.is_number() ? value.get<T>() : fallback;
}

// A task's result from its images': failed beats patched beats the rest.
std::string task_result(const std::vector<json>& images) {
    std::map<std::string, int> seen;
    for (const auto& image : images)
        ++seen[field<std::string>(image, "result", "unknown")];
    for (const char* result : {"failed", "unknown", "patched", "missing-patches"})
        if (seen.count(result) != 0)
            return result;
    return images.empty() ? "unknown" : "nothing-to-do";
}

void read_report(TaskRow& row, const json& report) {
    row.images = report.is_array() ? report.get<std::vector<json>>() : std::vector<json>{report};
    row.result = task_result(row.images);
    for (const auto& image : row.images) {
        const auto packages = image.is_object() ? image.value("packages", json::array()) : json();
        row.patches += packages.is_array() ? packages.size() : 0;
        row.seconds += field<double>(image, "total_seconds", 0);
        if (row.error.empty() && field<std::string>(image, "result", "") == "failed")
            row.error = field<std::string>(image, "error", "failed");
    }
}

TaskRow read_task(const std::string& fleet, const FleetSpec& spec, size_t index) {
    TaskRow row{fleet, index, spec.targets[index]};
    const auto done = read_json(task_done_path(fleet, index));
    if (done) {
        row.host = field<std::string>(*done, "host", "");
        row.started = field<double>(*done, "started", 0);
        row.ended = field<double>(*done, "ended", 0);
    }
    if (const auto report = read_json(task_report_path(fleet, index))) {
        read_report(row, *report);
    } else if (done) {
        row.result = "failed";
        row.error = fmt::format("the task ended with status {} and wrote no report; see {}",
                                field<int>(*done, "exit_code", -1), task_log_path(fleet, index));
    }
    return row;
}

Result<std::vector<TaskRow>> read_fleets(const std::vector<std::string>& fleets) {
    std::vector<TaskRow> rows;
    for (const auto& fleet : fleets) {
        const auto spec = PV_TRY(read_fleet_spec(fleet));
        for (size_t index = 0; index < spec.targets.size(); ++index)
            rows.push_back(read_task(fleet, spec, index));
    }
    return rows;
}

json summarize(const std::vector<TaskRow>& rows) {
    std::map<std::string, int> results;
    std::map<std::string, std::vector<double>> phases;
    double first = std::numeric_limits<double>::max();
    double last = 0;
    size_t images = 0;
    for (const auto& row : rows) {
        ++results[row.result];
        if (row.started && row.ended) {
            first = std::min(first, *row.started);
            last = std::max(last, *row.ended);
        }
        for (const auto& image : row.images) {
            ++images;
            const auto list = image.is_object() ? image.value("phases", json::array()) : json();
            for (const auto& phase : list.is_array() ? list : json::array())
                if (phase.is_object() && phase.contains("name"))
                    phases[field<std::string>(phase, "name", "?")].push_back(
                        field<double>(phase, "seconds", 0));
        }
    }
    const double wall = last > first ? last - first : 0;
    json tasks = json::array();
    for (const auto& row : rows)
        tasks.push_back({{"fleet", row.fleet},
                         {"index", row.index},
                         {"target", row.target},
                         {"result", row.result},
                         {"patches", row.patches},
                         {"seconds", row.seconds},
                         {"host", row.host},
                         {"error", row.error}});
    return {{"tasks", rows.size()},
            {"images", images},
            {"results", results},
            {"wall_seconds", wall},
            {"images_per_minute", wall > 0 ? 60.0 * images / wall : 0},
            {"phases", phase_figures(std::move(phases))},
            {"task_results", tasks}};
}

void print_table(FILE* out, const std::vector<TaskRow>& rows, const json& summary) {
    fmt::print(out, "{:>4} {:<40} {:<14} {:>7} {:>8} {:<12} {}\n", "task", "target", "result",
               "patches", "seconds", "host", "error");
    for (const auto& row : rows)
        fmt::print(out, "{:>4} {:<40} {:<14} {:>7} {:>8.1f} {:<12} {}\n", row.index, row.target,
                   row.result, row.patches, row.seconds, row.host, row.error);
    const auto& results = summary["results"];
    fmt::print(out, "\n{} tasks: {} patched, {} failed, {} nothing to do, {} pending\n",
               summary["tasks"].get<size_t>(), results.value("patched", 0),
               results.value("failed", 0), results.value("nothing-to-do", 0),
               results.value("pending", 0));
    fmt::print(out, "{} images in {:.1f} s of fleet wall time: {:.2f} images/minute\n",
               summary["images"].get<size_t>(), summary["wall_seconds"].get<double>(),
               summary["images_per_minute"].get<double>());
    std::vector<std::string> order;
    for (const auto& row : rows)
        for (const auto& image : row.images)
            for (const auto& phase : image.value("phases", json::array()))
                if (const auto name = field<std::string>(phase, "name", "?");
                    std::find(order.begin(), order.end(), name) == order.end())
                    order.push_back(name);
    print_phase_table(out, order, summary["phases"]);
}

Result<int> status(const StatusFlags& flags) {
    const auto started = std::chrono::steady_clock::now();
    auto rows = PV_TRY(read_fleets(flags.reports));
    const auto pending = [&rows] {
        return std::any_of(rows.begin(), rows.end(),
                           [](const TaskRow& row) { return row.result == "pending"; });
    };
    while (flags.wait && pending() &&
           (flags.timeout_s == 0 ||
            std::chrono::steady_clock::now() - started < std::chrono::seconds(flags.timeout_s))) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        rows = PV_TRY(read_fleets(flags.reports));
    }
    const auto summary = summarize(rows);
    print_table(flags.json_output ? stderr : stdout, rows, summary);
    if (flags.json_output)
        fmt::print("{}\n", summary.dump());
    if (summary["results"].value("failed", 0) > 0)
        return kExitFailed;
    return pending() ? kExitPending : kExitOk;
}

}  // namespace

void add_status_command(CLI::App& fleet, CommandResult& result) {
    auto* command = fleet.add_subcommand(
        "status",
        "Gather a fleet's reports: one row per task, results counted, per-phase p50/p95, "
        "images per minute; exit 0 all ended well, 1 some failed, 4 some still pending");
    auto flags = std::make_shared<StatusFlags>();
    command->add_option("--reports", flags->reports, "a fleet's reports directory (repeatable)")
        ->required();
    command->add_flag("--json", flags->json_output, "print the summary as JSON on standard output");
    command->add_flag("--wait", flags->wait, "wait until no task is pending");
    command->add_option("--timeout-s", flags->timeout_s, "with --wait: give up after N s");
    command->callback([&result, flags] { result.outcome = status(*flags); });
}

}  // namespace pv::cli
