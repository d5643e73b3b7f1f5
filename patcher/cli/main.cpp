// patchvisor: the command-line tool. Exit codes (DESIGN.md "Outputs"):
// 0 success, 1 failure (the original intact), 2 bad usage, 3 nothing to do.

#include <cstdio>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "patcher/cli/commands.hpp"

int main(int argc, char** argv) {
    CLI::App app{"patchvisor: patch virtual-machine images offline, safely"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "patchvisor 0.1.0");
    pv::cli::CommandResult result;
    pv::cli::add_patch_commands(app, result);
    pv::cli::add_batch_command(app, result);
    pv::cli::add_img_commands(app, result);
    pv::cli::add_gc_command(app, result);
    pv::cli::add_fleet_command(app, result);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& error) {
        const int code = app.exit(error);
        return code == 0 ? 0 : pv::cli::kExitUsage;
    }
    if (!result.outcome) {
        fmt::print(stderr, "patchvisor: {}\n", result.outcome.error().message());
        return pv::cli::kExitFailed;
    }
    return *result.outcome;
}
