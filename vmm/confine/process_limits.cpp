#include "vmm/confine/process_limits.hpp"

#include <dirent.h>
#include <fmt/format.h>
#include <grp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <string>

namespace pv::vmm::confine {

namespace {

Result<void> lower_limit(int resource, const char* name, rlim_t value) {
    struct rlimit limit {};
    if (getrlimit(resource, &limit) != 0)
        return fail(errno_error(fmt::format("getrlimit {}", name)));
    // Only lowered: an unprivileged process cannot raise a hard limit, and a
    // limit the caller already set lower stays.
    if (limit.rlim_max != RLIM_INFINITY)
        value = std::min(value, limit.rlim_max);
    limit.rlim_cur = value;
    limit.rlim_max = value;
    if (setrlimit(resource, &limit) != 0)
        return fail(errno_error(fmt::format("setrlimit {} {}", name, value)));
    return {};
}

}  // namespace

rlim_t disk_file_size_bound(uint64_t file_size, uint64_t virtual_size) {
    constexpr uint64_t kSlack = 16ull << 20;
    return file_size + virtual_size + virtual_size / 1024 + kSlack;
}

Result<void> set_no_new_privs() {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return fail(errno_error("prctl PR_SET_NO_NEW_PRIVS"));
    return {};
}

Result<void> apply_resource_limits(const ResourceLimits& limits) {
    PV_TRY(lower_limit(RLIMIT_CORE, "RLIMIT_CORE", 0));
    PV_TRY(lower_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", limits.open_files));
    if (limits.file_size != RLIM_INFINITY) {
        std::signal(SIGXFSZ, SIG_IGN);
        PV_TRY(lower_limit(RLIMIT_FSIZE, "RLIMIT_FSIZE", limits.file_size));
    }
    PV_TRY(lower_limit(RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK", 0));
    PV_TRY(lower_limit(RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE", 0));
    return {};
}

Result<size_t> thread_count() {
    DIR* directory = opendir("/proc/self/task");
    if (directory == nullptr)
        return fail(errno_error("open /proc/self/task"));
    size_t count = 0;
    while (dirent* entry = readdir(directory)) {
        if (entry->d_name[0] != '.')
            ++count;
    }
    closedir(directory);
    return count;
}

Result<bool> any_thread_filtered() {
    DIR* directory = opendir("/proc/self/task");
    if (directory == nullptr)
        return fail(errno_error("open /proc/self/task"));
    bool filtered = false;
    while (dirent* entry = readdir(directory)) {
        if (entry->d_name[0] == '.')
            continue;
        std::ifstream status(fmt::format("/proc/self/task/{}/status", entry->d_name));
        for (std::string line; std::getline(status, line);) {
            if (line.rfind("Seccomp:", 0) == 0 && line.find('0') == std::string::npos)
                filtered = true;
        }
    }
    closedir(directory);
    return filtered;
}

Result<void> drop_identity(const Identity& identity) {
    std::string operation = fmt::format("drop to uid {} gid {}", identity.uid, identity.gid);
    // glibc makes every thread change its ids (the kernel's are per thread)
    // by signalling them; a thread whose filter forbids setresuid would die.
    if (PV_TRY(any_thread_filtered()))
        return fail(make_error(operation, "a thread already has a seccomp filter"));
    // Groups first: once the uid is no longer 0, setgroups is refused.
    // Unprivileged, there are no groups to shed and setresuid below decides.
    if (setgroups(0, nullptr) != 0 && !(errno == EPERM && geteuid() != 0))
        return fail(errno_error(operation + ": setgroups"));
    if (setresgid(identity.gid, identity.gid, identity.gid) != 0)
        return fail(errno_error(operation + ": setresgid"));
    if (setresuid(identity.uid, identity.uid, identity.uid) != 0)
        return fail(errno_error(operation + ": setresuid"));
    // Defence against a kernel or libc that kept a saved id: root must be
    // out of reach now (unless it is the identity asked for).
    if (identity.uid != 0 && setuid(0) == 0)
        return fail(make_error(operation, "uid 0 could be regained"));
    if (identity.gid != 0 && setgid(0) == 0)
        return fail(make_error(operation, "gid 0 could be regained"));
    return {};
}

}  // namespace pv::vmm::confine
