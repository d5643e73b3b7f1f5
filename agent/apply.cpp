#include "agent/apply.hpp"

#include <deque>

#include "agent/service_guard.hpp"

namespace pv::agent {

namespace {

constexpr size_t kTailLines = 20;

Result<CommandOutcome> run_with_tail(const std::string& root, const std::vector<std::string>& argv,
                                     const LineCallback& on_line) {
    std::deque<std::string> tail;
    const int exit_code =
        PV_TRY(run_in_chroot(root, argv, [&](LogStream stream, std::string_view line) {
            tail.emplace_back(line);
            if (tail.size() > kTailLines)
                tail.pop_front();
            on_line(stream, line);
        }));
    CommandOutcome outcome{exit_code, {}};
    for (const auto& line : tail)
        outcome.output_tail += line + "\n";
    return outcome;
}

// Runs ARGV with MANAGER's service guard in place, and fails when the guard
// cannot be removed again: the image must not keep it.
Result<CommandOutcome> run_guarded(const std::string& root, wire::PackageManager manager,
                                   const std::vector<std::string>& argv,
                                   const LineCallback& on_line) {
    auto guard = PV_TRY(ServiceGuard::install(root, manager));
    auto outcome = run_with_tail(root, argv, on_line);
    auto removed = guard.restore();
    if (!outcome)
        return outcome;
    if (!removed)
        return fail(with_context(removed.error(), "remove the no-services guard"));
    return outcome;
}

}  // namespace

Result<CommandOutcome> install_packages(const std::string& root, wire::PackageManager manager,
                                        const std::vector<std::string>& paths,
                                        const LineCallback& on_line) {
    if (paths.empty())
        return fail(Error{"apply", "no files to install", EPROTO});
    std::vector<std::string> argv;
    switch (manager) {
        case wire::PACKAGE_MANAGER_DPKG:
            argv = {"dpkg", "--force-confold", "--force-confdef", "-i"};
            break;
        case wire::PACKAGE_MANAGER_RPM:
            argv = {"rpm", "-U", "--replacepkgs"};
            break;
        default:
            return fail(Error{"apply", "no supported package manager in the guest", ENOTSUP});
    }
    argv.insert(argv.end(), paths.begin(), paths.end());
    return run_guarded(root, manager, argv, on_line);
}

bool is_allowed_command(const std::vector<std::string>& argv) {
    static const std::vector<std::vector<std::string>> allowed = {
        {"dpkg", "--configure", "-a"}, {"dpkg", "--audit"}, {"dpkg", "-C"},
        {"rpm", "--rebuilddb"},        {"rpm", "-Va"},
    };
    for (const auto& command : allowed) {
        if (argv == command)
            return true;
    }
    return false;
}

Result<CommandOutcome> run_allowed(const std::string& root, const std::vector<std::string>& argv,
                                   const LineCallback& on_line) {
    if (!is_allowed_command(argv)) {
        std::string joined;
        for (const auto& arg : argv)
            joined += (joined.empty() ? "" : " ") + arg;
        return fail(Error{"run", "command not allowed: " + joined, EPERM});
    }
    // rpm -Va runs the packages' %verify scriptlets.
    const auto manager =
        argv.front() == "dpkg" ? wire::PACKAGE_MANAGER_DPKG : wire::PACKAGE_MANAGER_RPM;
    return run_guarded(root, manager, argv, on_line);
}

}  // namespace pv::agent
