#include "patcher/sandbox/jail/confinement.hpp"

#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "common/fd.hpp"

namespace pv::sandbox {

namespace {

// The capabilities the jail keeps, and why (capabilities(7)). Everything
// else goes, among it CAP_MKNOD (the jail's /dev is built before the drop;
// with it a script could make a node for a host disk), CAP_NET_ADMIN
// (loopback is up before the drop), CAP_DAC_READ_SEARCH (open_by_handle_at),
// CAP_SYS_PTRACE (also what /proc/1/root of the agent would need),
// CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_BOOT, CAP_SYS_TIME, CAP_MAC_*,
// CAP_BPF, CAP_PERFMON, CAP_SYSLOG, CAP_AUDIT_*, CAP_NET_RAW, CAP_IPC_*,
// CAP_LEASE, CAP_WAKE_ALARM and CAP_BLOCK_SUSPEND.
struct KeptCapability {
    int number;
    const char* reason;
};
constexpr KeptCapability kKeptCapabilities[] = {
    {CAP_CHOWN, "dpkg and rpm give installed files their owners"},
    {CAP_DAC_OVERRIDE, "root reads and writes guest files whatever their modes"},
    {CAP_FOWNER, "dpkg sets modes and times of files root does not own"},
    {CAP_FSETID, "setuid and setgid bits survive dpkg's chown and chmod"},
    {CAP_KILL, "the agent and start-stop-daemon signal other users' processes (pid ns only)"},
    {CAP_SETGID, "maintainer scripts run commands as system groups (runuser, su)"},
    {CAP_SETUID, "maintainer scripts run commands as system users (runuser, su)"},
    {CAP_SETPCAP, "the agent drops capabilities from the bounding set of what it runs"},
    {CAP_SETFCAP, "postinst scripts set file capabilities (iputils-ping: setcap)"},
    {CAP_SYS_CHROOT, "the agent chroots into the guest for dpkg and rpm"},
    {CAP_SYS_ADMIN, "the agent mounts the guest root and the chroot's /proc, /sys, /dev"},
    {CAP_SYS_RESOURCE, "root may use ext4's reserved blocks, as in the guest itself"},
};

// The denied system calls, each with why (beyond "a package install has
// no use for it"). EPERM is what the call returns without privilege, so
// tools treat it as such; ENOSYS where the caller should fall back to an
// older call the filter can see into or that has less kernel behind it.
struct DeniedSpec {
    const char* name;
    int error;
    const char* reason;
};
constexpr DeniedSpec kDenied[] = {
    {"kexec_load", EPERM, "would replace the host kernel"},
    {"kexec_file_load", EPERM, "would replace the host kernel"},
    {"init_module", EPERM, "loads code into the host kernel"},
    {"finit_module", EPERM, "loads code into the host kernel"},
    {"delete_module", EPERM, "removes host kernel modules"},
    {"bpf", EPERM, "programs for the host kernel; verifier bugs are a known escalation"},
    {"perf_event_open", EPERM, "host-wide counters, side channels, a long CVE record"},
    {"keyctl", EPERM, "keyrings are not namespaced: uid 0 here shares root's with the host"},
    {"add_key", EPERM, "keyrings are not namespaced"},
    {"request_key", EPERM, "keyrings are not namespaced (and it runs a host helper)"},
    {"userfaultfd", EPERM, "exploits use it to hold kernel race windows open"},
    {"open_by_handle_at", EPERM, "opens inodes past mount namespaces and chroots (shocker)"},
    {"swapon", EPERM, "host swap"},
    {"swapoff", EPERM, "host swap"},
    {"iopl", EPERM, "raw I/O port access"},
    {"ioperm", EPERM, "raw I/O port access"},
    {"clock_settime", EPERM, "the clock is the host's (time namespaces cover no wall clock)"},
    {"clock_adjtime", EPERM, "the clock is the host's"},
    {"settimeofday", EPERM, "the clock is the host's"},
    {"adjtimex", EPERM, "the clock is the host's"},
    {"acct", EPERM, "process accounting is host-wide"},
    {"quotactl", EPERM, "filesystem quotas are host state"},
    {"quotactl_fd", EPERM, "filesystem quotas are host state"},
    {"setns", EPERM, "joining another namespace undoes the jail"},
    {"pivot_root", EPERM, "the jail's root is final before the filter loads"},
    {"reboot", EPERM, "the jail ends through the host, never by itself"},
    {"syslog", EPERM, "the host's kernel log, which leaks kernel addresses"},
    {"ptrace", EPERM, "would let a maintainer script steer other processes"},
    {"process_vm_readv", EPERM, "another process's memory, as ptrace"},
    {"process_vm_writev", EPERM, "another process's memory, as ptrace"},
    {"clone3", ENOSYS, "flags in memory seccomp cannot read; glibc falls back to clone"},
    {"io_uring_setup", ENOSYS, "its operations bypass this filter; many escalations"},
    {"io_uring_enter", ENOSYS, "its operations bypass this filter"},
    {"io_uring_register", ENOSYS, "its operations bypass this filter"},
    {"fsopen", ENOSYS, "the agent uses mount(2); the new mount API is more kernel surface"},
    {"fsconfig", ENOSYS, "new mount API (CVE-2022-0185 was in it)"},
    {"fsmount", ENOSYS, "new mount API"},
    {"fspick", ENOSYS, "new mount API"},
    {"open_tree", ENOSYS, "new mount API"},
    {"move_mount", ENOSYS, "new mount API"},
    {"mount_setattr", ENOSYS, "new mount API"},
};

// unshare(2) and clone(2) are denied only with CLONE_NEWUSER: a new user
// namespace grants a full capability set over itself and opens kernel code
// otherwise closed to the jail. Other namespaces need CAP_SYS_ADMIN, which
// the agent's commands do not have. Both take the flags as argument 0 on
// x86-64, i386 and x32.
constexpr const char* kNoNewUserNamespace[] = {"unshare", "clone"};

using FilterContext = std::unique_ptr<void, decltype(&seccomp_release)>;

Result<void> add_rule(scmp_filter_ctx context, const char* name, uint32_t action,
                      std::initializer_list<scmp_arg_cmp> conditions = {}) {
    const int number = seccomp_syscall_resolve_name(name);
    if (number == __NR_SCMP_ERROR)
        return fail(make_error("seccomp filter", std::string("unknown system call ") + name));
    const int result =
        seccomp_rule_add_array(context, action, number, static_cast<unsigned>(conditions.size()),
                               conditions.size() ? conditions.begin() : nullptr);
    if (result != 0)
        return fail(errno_error(std::string("seccomp rule for ") + name, -result));
    return {};
}

Result<FilterContext> build_filter() {
    FilterContext context(seccomp_init(SCMP_ACT_ALLOW), seccomp_release);
    if (!context)
        return fail(make_error("seccomp filter", "seccomp_init failed"));
    // Other ABIs a native x86-64 kernel accepts; any ABI not in the filter
    // is killed (libseccomp's default bad-architecture action).
    if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
        for (const uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
            if (const int result = seccomp_arch_add(context.get(), arch); result != 0)
                return fail(errno_error("seccomp filter: add architecture", -result));
        }
    }
    for (const DeniedSpec& denied : kDenied)
        PV_TRY(add_rule(context.get(), denied.name, SCMP_ACT_ERRNO(denied.error)));
    for (const char* name : kNoNewUserNamespace)
        PV_TRY(add_rule(context.get(), name, SCMP_ACT_ERRNO(EPERM),
                        {SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER)}));
    return context;
}

// libseccomp 2.5 exports BPF only to a file descriptor.
Result<std::vector<sock_filter>> export_filter(scmp_filter_ctx context) {
    Fd memory(::memfd_create("pv-seccomp", MFD_CLOEXEC));
    if (!memory.valid())
        return fail(errno_error("memfd for the seccomp filter"));
    if (const int result = seccomp_export_bpf(context, memory.get()); result != 0)
        return fail(errno_error("export the seccomp filter", -result));
    const off_t size = ::lseek(memory.get(), 0, SEEK_END);
    if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
        return fail(make_error("export the seccomp filter", "odd program size"));
    std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
    PV_TRY(pread_all(memory.get(), program.data(), static_cast<size_t>(size), 0,
                     "read the seccomp filter"));
    return program;
}

int drop_capabilities(uint64_t kept) {
    // The bounding set first (needs CAP_SETPCAP, which is kept); the kernel
    // answers EINVAL past its last capability.
    for (int number = 0; number < 64; ++number) {
        if (kept & (uint64_t{1} << number))
            continue;
        if (::prctl(PR_CAPBSET_DROP, number, 0, 0, 0) != 0) {
            if (errno == EINVAL)
                break;
            return -1;
        }
    }
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
        return -1;
    // A kept capability the process does not have (a host that withholds
    // CAP_SYS_RESOURCE, say) cannot be kept: capset would refuse.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &header, data) != 0)
        return -1;
    for (int word = 0; word < 2; ++word) {
        const auto bits = static_cast<uint32_t>(kept >> (32 * word)) & data[word].permitted;
        data[word].effective = bits;
        data[word].permitted = bits;
        data[word].inheritable = 0;
    }
    return static_cast<int>(::syscall(SYS_capset, &header, data));
}

}  // namespace

uint64_t kept_capabilities() {
    uint64_t kept = 0;
    for (const KeptCapability& capability : kKeptCapabilities)
        kept |= uint64_t{1} << capability.number;
    return kept;
}

std::vector<DeniedCall> denied_calls() {
    std::vector<DeniedCall> calls;
    for (const DeniedSpec& denied : kDenied)
        calls.push_back({denied.name, denied.error});
    return calls;
}

Result<Confinement> prepare_confinement() {
    FilterContext context = PV_TRY(build_filter());
    Confinement confinement;
    confinement.kept_capabilities = kept_capabilities();
    confinement.filter = PV_TRY(export_filter(context.get()));
    return confinement;
}

int apply_confinement(const Confinement& confinement) {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    if (drop_capabilities(confinement.kept_capabilities) != 0)
        return -1;
    sock_fprog program{static_cast<unsigned short>(confinement.filter.size()),
                       const_cast<sock_filter*>(confinement.filter.data())};
    return static_cast<int>(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program));
}

}  // namespace pv::sandbox
