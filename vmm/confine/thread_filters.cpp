#include "vmm/confine/thread_filters.hpp"

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <initializer_list>

#include "vmm/confine/seccomp_context.hpp"

// The lists were found with `strace -f` of patchvisor-vmm running the test
// guest in each mode (plain, --disk, vsock): a syscall is here because a
// thread of that role was seen making it after setup, or because an error
// path it takes (a failing vCPU, a stop from the timeout) makes it.

namespace pv::vmm::confine {

namespace {

Result<void> allow_all(SeccompContext& filter, std::initializer_list<std::string_view> syscalls) {
    for (auto syscall : syscalls)
        PV_TRY(filter.allow(syscall));
    return {};
}

// What every thread needs to live and end.
Result<void> allow_common(SeccompContext& filter) {
    // Locks and condition variables (std::mutex, StopController, Asio's
    // scheduler); restart_syscall resumes a futex wait a signal interrupted.
    PV_TRY(allow_all(filter, {"futex", "restart_syscall", "sched_yield"}));
    // The kick signal (SIGRTMIN) returns through rt_sigreturn; glibc blocks
    // signals around pthread_kill and while a thread exits.
    PV_TRY(allow_all(filter, {"rt_sigreturn", "rt_sigprocmask"}));
    // The heap (malloc arenas grow and shrink, freed thread stacks are
    // advised away), never executable: no new code may appear after setup.
    PV_TRY(filter.allow_if("mmap", {argument_lacks(2, PROT_EXEC)}));
    PV_TRY(filter.allow_if("mprotect", {argument_lacks(2, PROT_EXEC)}));
    PV_TRY(allow_all(filter, {"brk", "munmap", "mremap", "madvise"}));
    // Clocks, when the vDSO falls back to the kernel.
    PV_TRY(allow_all(filter, {"clock_gettime", "gettimeofday"}));
    // The serial transcript (log file or stdout) and messages on stderr.
    PV_TRY(filter.allow("write"));
    // request_stop() kicks the vCPUs out of KVM_RUN with pthread_kill.
    PV_TRY(allow_all(filter, {"getpid", "gettid", "tgkill"}));
    // A thread's end, and the process's (exit, abort after the signal).
    PV_TRY(allow_all(filter, {"exit", "exit_group"}));
    return {};
}

Result<void> allow_ioctls(SeccompContext& filter, std::initializer_list<unsigned long> requests) {
    for (auto request : requests)
        PV_TRY(filter.allow_if("ioctl", {argument_is(1, static_cast<uint32_t>(request))}));
    return {};
}

// vCPU threads only run KVM_RUN (STYLE.md habit 9). The serial port raises
// its interrupt line from the vCPU that wrote it (KVM_IRQ_LINE), and a
// fatal exit reads the registers for the report.
Result<void> allow_vcpu(SeccompContext& filter) {
    PV_TRY(allow_ioctls(filter, {KVM_RUN, KVM_IRQ_LINE, KVM_GET_REGS, KVM_GET_SREGS}));
    return {};
}

Result<void> allow_event_loop(SeccompContext& filter) {
    // Asio's epoll reactor: waiting, (de)registering descriptors, its
    // eventfd interrupter and its timerfd.
    PV_TRY(allow_all(
        filter, {"epoll_wait", "epoll_pwait", "epoll_ctl", "read", "timerfd_settime", "close"}));
    return {};
}

// The main thread is vCPU 0 first; then it stops the loop, joins the other
// threads, reads its peak RSS and prints the summary.
Result<void> allow_main(SeccompContext& filter) {
    PV_TRY(allow_vcpu(filter));
    // Posting to the event loop wakes it (eventfd write + epoll_ctl re-arm).
    PV_TRY(allow_all(filter, {"epoll_ctl"}));
    // The summary: VmHWM from /proc/self/status (opened before confinement)
    // and the guest's resident pages (mincore over guest memory).
    PV_TRY(allow_all(filter, {"pread64", "getrusage", "mincore"}));
    // Tear-down closes what setup opened; stdio looks at stdout once.
    PV_TRY(allow_all(filter, {"close", "fstat", "newfstatat"}));
    PV_TRY(allow_ioctls(filter, {TCGETS}));
    return {};
}

}  // namespace

std::string_view to_string(ThreadRole role) {
    switch (role) {
        case ThreadRole::Vcpu:
            return "vcpu";
        case ThreadRole::EventLoop:
            return "event-loop";
        case ThreadRole::Main:
            return "main";
    }
    return "unknown";
}

Result<void> install_thread_filter(ThreadRole role) {
    auto filter = PV_TRY(SeccompContext::create());
    PV_TRY(allow_common(filter));
    switch (role) {
        case ThreadRole::Vcpu:
            PV_TRY(allow_vcpu(filter));
            break;
        case ThreadRole::EventLoop:
            PV_TRY(allow_event_loop(filter));
            break;
        case ThreadRole::Main:
            PV_TRY(allow_main(filter));
            break;
    }
    auto loaded = filter.load();
    if (!loaded)
        return fail(
            with_context(loaded.error(), "confine " + std::string(to_string(role)) + " thread"));
    return {};
}

}  // namespace pv::vmm::confine
