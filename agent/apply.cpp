#include "agent/apply.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <deque>
#include <optional>

#include "common/fd.hpp"

namespace pv::agent {

namespace {

constexpr size_t kTailLines = 20;

constexpr const char* kPolicyName = "policy-rc.d";
constexpr const char* kSavedPolicyName = "policy-rc.d.pv-agent-saved";
// invoke-rc.d's contract (Debian policy-rc.d interface): exit status 101
// means "action forbidden", so maintainer scripts start no services.
constexpr const char kPolicyScript[] =
    "#!/bin/sh\n# Installed by pv-agent while patching.\nexit 101\n";

// Puts /usr/sbin/policy-rc.d in place and restores the guest's own (if any)
// on destruction, so the patched image carries no trace of it.
class PolicyRcGuard {
  public:
    [[nodiscard]] static Result<PolicyRcGuard> install(const std::string& root) {
        Fd root_fd = PV_TRY(Fd::open(root, O_RDONLY | O_DIRECTORY));
        struct open_how how {};
        how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
        how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        Fd dir(
            static_cast<int>(syscall(SYS_openat2, root_fd.get(), "/usr/sbin", &how, sizeof how)));
        if (!dir.valid())
            return fail(errno_error("open /usr/sbin in the guest"));
        PolicyRcGuard guard(std::move(dir));
        if (renameat(guard.m_dir.get(), kPolicyName, guard.m_dir.get(), kSavedPolicyName) == 0)
            guard.m_saved = true;
        const int fd = openat(guard.m_dir.get(), kPolicyName,
                              O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
        if (fd < 0)
            return fail(errno_error("create /usr/sbin/policy-rc.d in the guest"));
        Fd file(fd);
        PV_TRY(pwrite_all(file.get(), kPolicyScript, sizeof kPolicyScript - 1, 0,
                          "write /usr/sbin/policy-rc.d"));
        fchmod(file.get(), 0755);
        return guard;
    }

    PolicyRcGuard(PolicyRcGuard&& other) noexcept
        : m_dir(std::move(other.m_dir)), m_saved(other.m_saved) {}
    PolicyRcGuard& operator=(PolicyRcGuard&&) = delete;
    ~PolicyRcGuard() {
        if (!m_dir.valid())
            return;
        unlinkat(m_dir.get(), kPolicyName, 0);
        if (m_saved)
            renameat(m_dir.get(), kSavedPolicyName, m_dir.get(), kPolicyName);
    }

  private:
    explicit PolicyRcGuard(Fd dir) : m_dir(std::move(dir)) {}
    Fd m_dir;
    bool m_saved = false;
};

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
    std::optional<PolicyRcGuard> guard;
    if (manager == wire::PACKAGE_MANAGER_DPKG)
        guard.emplace(PV_TRY(PolicyRcGuard::install(root)));
    return run_with_tail(root, argv, on_line);
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
    std::optional<PolicyRcGuard> guard;
    if (argv.front() == "dpkg")
        guard.emplace(PV_TRY(PolicyRcGuard::install(root)));
    return run_with_tail(root, argv, on_line);
}

}  // namespace pv::agent
