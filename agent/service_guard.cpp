#include "agent/service_guard.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace pv::agent {

namespace {

constexpr const char* kSavedSuffix = ".pv-agent-saved";

// invoke-rc.d's contract (Debian policy-rc.d interface): exit status 101
// means "action forbidden", so maintainer scripts start no services.
constexpr const char kPolicyScript[] =
    "#!/bin/sh\n# Installed by pv-agent while patching.\nexit 101\n";

// The systemctl(1) and service(8) verbs that start, restart or reload a
// unit, change the system's state or re-execute the manager. Every argument
// is looked at, so options before the verb (`systemctl --no-block
// try-restart x`) do not hide it; a unit is never named like a bare verb
// (it has a suffix such as ".service").
constexpr const char* kRefusedVerbs =
    "start|restart|try-restart|condrestart|reload|force-reload|condreload|reload-or-restart|"
    "try-reload-or-restart|reload-or-try-restart|isolate|default|rescue|emergency|halt|"
    "poweroff|reboot|soft-reboot|kexec|suspend|hibernate|hybrid-sleep|switch-root|exit|"
    "daemon-reexec";

// The shim for a systemctl or service whose real program was moved to
// SAVED_PATH (a guest path). A refused verb ends it with exit status 0, as
// systemctl itself does in a chroot ("Running in chroot, ignoring
// command"), so a scriptlet that restarts its service still succeeds: the
// service starts when the VM boots. `enable --now` loses only its --now, so
// the unit is still enabled for that boot.
std::string service_shim(const std::string& saved_path) {
    return "#!/bin/sh\n"
           "# Installed by pv-agent while patching: no service starts in the sandbox.\n"
           "for argument do\n"
           "  case $argument in\n"
           "    " +
           std::string(kRefusedVerbs) +
           ")\n"
           "      echo \"pv-agent: refused while patching offline: $0 $*\" >&2\n"
           "      exit 0 ;;\n"
           "  esac\n"
           "done\n"
           "for argument do\n"
           "  shift\n"
           "  if [ \"$argument\" = --now ]; then\n"
           "    echo \"pv-agent: --now ignored while patching offline: $0\" >&2\n"
           "  else\n"
           "    set -- \"$@\" \"$argument\"\n"
           "  fi\n"
           "done\n"
           "exec " +
           saved_path + " \"$@\"\n";
}

// The directory at guest path PATH, resolved inside ROOT (a symlink in the
// guest cannot lead out of it).
Result<Fd> open_guest_directory(const Fd& root, const std::string& path) {
    struct open_how how {};
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    Fd directory(
        static_cast<int>(syscall(SYS_openat2, root.get(), path.c_str(), &how, sizeof how)));
    if (!directory.valid())
        return fail(errno_error("open " + path + " in the guest"));
    return directory;
}

// The guest paths whose systemctl or service an rpm run gets shims for.
constexpr const char* kRpmToolDirectories[] = {"/usr/bin", "/usr/sbin", "/bin", "/sbin"};
constexpr const char* kRpmTools[] = {"systemctl", "service"};

}  // namespace

Shim::Shim(Fd directory, std::string path, std::string name)
    : m_directory(std::move(directory)), m_path(std::move(path)), m_name(std::move(name)) {}

Result<Shim> Shim::install(Fd directory, const std::string& guest_directory,
                           const std::string& name, const std::string& text) {
    Shim shim(std::move(directory), guest_directory + "/" + name, name);
    const int dir = shim.m_directory.get();
    const std::string saved = name + kSavedSuffix;
    // RENAME_NOREPLACE: a file the guest already has under the saved name
    // is not overwritten; the job fails instead.
    if (renameat2(dir, name.c_str(), dir, saved.c_str(), RENAME_NOREPLACE) == 0)
        shim.m_saved = true;
    else if (errno != ENOENT)
        return fail(errno_error("move " + shim.m_path + " aside to " + saved));
    Fd file(openat(dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755));
    if (!file.valid())
        return fail(errno_error("create " + shim.m_path + " in the guest"));
    PV_TRY(pwrite_all(file.get(), text.data(), text.size(), 0, "write " + shim.m_path));
    struct stat st {};
    if (fchmod(file.get(), 0755) != 0 || fstat(file.get(), &st) != 0)
        return fail(errno_error("set up " + shim.m_path));
    shim.m_device = st.st_dev;
    shim.m_inode = st.st_ino;
    return shim;
}

Result<void> Shim::restore() {
    if (!m_directory.valid())
        return {};
    const Fd directory = std::move(m_directory);
    const int dir = directory.get();
    const std::string saved = m_name + kSavedSuffix;
    struct stat st {};
    const bool ours = fstatat(dir, m_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                      st.st_dev == m_device && st.st_ino == m_inode;
    if (ours && unlinkat(dir, m_name.c_str(), 0) != 0)
        return fail(errno_error("remove the stand-in " + m_path));
    if (!m_saved)
        return {};
    if (ours) {
        if (renameat(dir, saved.c_str(), dir, m_name.c_str()) != 0)
            return fail(errno_error("put the guest's " + m_path + " back"));
    } else if (unlinkat(dir, saved.c_str(), 0) != 0) {
        return fail(errno_error("remove the replaced " + m_path + kSavedSuffix));
    }
    return {};
}

Shim::~Shim() {
    (void)restore();
}

Result<ServiceGuard> ServiceGuard::install(const std::string& root, wire::PackageManager manager) {
    const Fd root_fd = PV_TRY(Fd::open(root, O_RDONLY | O_DIRECTORY));
    ServiceGuard guard;
    if (manager == wire::PACKAGE_MANAGER_DPKG) {
        guard.m_shims.push_back(
            PV_TRY(Shim::install(PV_TRY(open_guest_directory(root_fd, "/usr/sbin")), "/usr/sbin",
                                 "policy-rc.d", kPolicyScript)));
        return guard;
    }
    if (manager != wire::PACKAGE_MANAGER_RPM)
        return guard;
    std::vector<std::pair<dev_t, ino_t>> seen;
    for (const char* path : kRpmToolDirectories) {
        auto directory = open_guest_directory(root_fd, path);
        if (!directory && directory.error().code == ENOENT)
            continue;
        if (!directory)
            return fail(directory.error());
        // /bin and /sbin are often symlinks to their /usr twins: one shim
        // per real directory, or the second would save the first's shim.
        struct stat st {};
        if (fstat(directory->get(), &st) != 0)
            return fail(errno_error(std::string("stat ") + path + " in the guest"));
        const std::pair identity{st.st_dev, st.st_ino};
        if (std::find(seen.begin(), seen.end(), identity) != seen.end())
            continue;
        seen.push_back(identity);
        for (const char* tool : kRpmTools) {
            if (fstatat(directory->get(), tool, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
                continue;
            Fd own(dup(directory->get()));
            if (!own.valid())
                return fail(errno_error("dup"));
            const std::string saved = std::string(path) + "/" + tool + kSavedSuffix;
            guard.m_shims.push_back(
                PV_TRY(Shim::install(std::move(own), path, tool, service_shim(saved))));
        }
    }
    return guard;
}

Result<void> ServiceGuard::restore() {
    Result<void> first;
    // Last in, first out, though the shims are independent of each other.
    for (auto it = m_shims.rbegin(); it != m_shims.rend(); ++it)
        keep_first(first, it->restore());
    m_shims.clear();
    return first;
}

}  // namespace pv::agent
