// patchvisor gc: removes what dead patchvisor processes left behind
// (gc_scan.hpp says what and how liveness is judged).

#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "patcher/cli/commands.hpp"
#include "patcher/cli/gc_scan.hpp"

namespace pv::cli {

namespace {

struct GcFlags {
    GcOptions options;
    bool json = false;
    bool dry_run = false;
};

// Absolute, normalized and without a trailing slash, as the paths gc
// compares it with (mountinfo, loop backing files, job records) are written.
std::string absolute(const std::string& path) {
    auto text = std::filesystem::absolute(path).lexically_normal().string();
    while (text.size() > 1 && text.back() == '/')
        text.pop_back();
    return text;
}

Result<int> run_gc(GcFlags flags) {
    flags.options.work_dir = absolute(flags.options.work_dir);
    flags.options.runtime_root = absolute(flags.options.runtime_root);
    const auto scan = scan_leftovers(flags.options);
    nlohmann::json removed = nlohmann::json::array();
    nlohmann::json failed = nlohmann::json::array();
    for (const auto& leftover : scan.leftovers) {
        nlohmann::json item = {{"kind", leftover_kind_name(leftover.kind)},
                               {"path", leftover.path},
                               {"detail", leftover.detail}};
        const auto result = flags.dry_run ? Result<void>{} : remove_leftover(leftover);
        if (!flags.json) {
            if (result)
                fmt::print("{} {} {}  ({})\n", flags.dry_run ? "would remove" : "removed",
                           leftover_kind_name(leftover.kind), leftover.path, leftover.detail);
            else
                fmt::print(stderr, "patchvisor gc: {}\n", result.error().message());
        }
        if (result) {
            removed.push_back(std::move(item));
        } else {
            item["error"] = result.error().message();
            failed.push_back(std::move(item));
        }
    }
    if (flags.json) {
        const nlohmann::json report = {{"dry_run", flags.dry_run},
                                       {flags.dry_run ? "stale" : "removed", removed},
                                       {"failed", failed},
                                       {"live", scan.live}};
        fmt::print("{}\n", report.dump());
    } else {
        for (const auto& live : scan.live)
            fmt::print("left alone: {}\n", live);
        if (scan.leftovers.empty())
            fmt::print("no leftovers of dead patchvisor processes\n");
    }
    return failed.empty() ? kExitOk : kExitFailed;
}

}  // namespace

void note_leftovers(const std::string& work_dir) {
    GcOptions options;
    options.work_dir = absolute(work_dir);
    const auto count = scan_leftovers(options).leftovers.size();
    if (count != 0)
        fmt::print(stderr,
                   "patchvisor: note: {} leftover{} of killed patchvisor runs "
                   "(`patchvisor gc --dry-run --work-dir {}` lists them, `patchvisor gc` "
                   "removes them)\n",
                   count, count == 1 ? "" : "s", options.work_dir);
}

void add_gc_command(CLI::App& app, CommandResult& result) {
    auto* gc = app.add_subcommand(
        "gc",
        "Remove what killed patchvisor processes left: FUSE mounts, loop devices and runtime "
        "directories under the runtime root, overlays and job records in the work directory, "
        "temp files (.NAME.pv-tmp-*) next to their targets. Never touches anything of a running "
        "process. `patchvisor patch` only warns about leftovers; it does not remove them.");
    auto flags = std::make_shared<GcFlags>();
    gc->add_flag("--json", flags->json, "print what was removed as one JSON object");
    gc->add_flag("--dry-run", flags->dry_run, "only list what would be removed");
    gc->add_option("--work-dir", flags->options.work_dir,
                   "the work directory the jobs used (as patch --work-dir)")
        ->capture_default_str();
    gc->add_option("--runtime-root", flags->options.runtime_root,
                   "where sandboxes keep their runtime directories")
        ->capture_default_str();
    gc->callback([&result, flags] { result.outcome = run_gc(*flags); });
}

}  // namespace pv::cli
