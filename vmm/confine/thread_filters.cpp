#include "vmm/confine/thread_filters.hpp"

#include <linux/kvm.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <initializer_list>

#include "vmm/confine/seccomp_context.hpp"

// The lists were found with `strace -f` of patchvisor-vmm running the test
// guest in each mode (plain, 1-3 vCPUs, hang with timeout, triple fault,
// --disk raw, qcow2 overlay and read-only with testguest.blk=rw|ro|bad|bench,
// --uid): a syscall is here because a thread of that role was seen making it
// after setup, or because an error path it takes (a failing vCPU, a stop
// from the timeout) makes it; and of the vsock branch's KVM tests (guest and
// host connecting, 16 MiB echoes, a refused port).

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

// vCPU threads only run KVM_RUN. The serial port raises
// its interrupt line from the vCPU that wrote it (KVM_IRQ_LINE), and a
// fatal exit reads the registers for the report. A device's status write
// (DRIVER_OK, reset) runs on the vCPU that made it, and virtio-vsock then
// posts its work to the event loop; Asio wakes a loop blocked in epoll_wait
// by re-arming its interrupter (EPOLL_CTL_MOD) besides the eventfd write.
// vCPU 0 is the main thread, which had that, so only a guest that set up
// its vsock driver on another vCPU (Linux does, at random) showed it.
Result<void> allow_vcpu(SeccompContext& filter) {
    PV_TRY(allow_ioctls(filter, {KVM_RUN, KVM_IRQ_LINE, KVM_GET_REGS, KVM_GET_SREGS}));
    PV_TRY(filter.allow_if("epoll_ctl", {argument_is(1, EPOLL_CTL_MOD)}));
    return {};
}

Result<void> allow_event_loop(SeccompContext& filter) {
    // Asio's epoll reactor: waiting, (de)registering descriptors, its
    // eventfd interrupter and its timerfd.
    PV_TRY(allow_all(
        filter, {"epoll_wait", "epoll_pwait", "epoll_ctl", "read", "timerfd_settime", "close"}));
    return {};
}

// The vsock bridge (DESIGN.md: hybrid Unix-socket convention): accepting
// host connections on <uds>, connecting to <uds>_PORT, stream I/O (Asio's
// single-buffer recv/send) and half-closes, through Asio (non-blocking mode
// by FIONBIO; a connect that has to wait reports by SO_ERROR). Unix sockets
// only: no network socket is ever made.
Result<void> allow_unix_sockets(SeccompContext& filter) {
    PV_TRY(filter.allow_if("socket", {argument_is(0, AF_UNIX)}));
    PV_TRY(allow_all(filter, {"connect", "accept", "recvfrom", "sendto", "shutdown"}));
    PV_TRY(filter.allow_if("getsockopt", {argument_is(1, SOL_SOCKET), argument_is(2, SO_ERROR)}));
    PV_TRY(allow_ioctls(filter, {FIONBIO}));
    return {};
}

// virtio-blk over imgfmt (raw, or a qcow2 overlay with its backing chain
// read through libqcow): positional reads and writes, flushes, discards
// (hole punching), and the size and holes of the file.
Result<void> allow_disk_io(SeccompContext& filter) {
    PV_TRY(allow_all(filter, {"pread64", "pwrite64", "preadv", "pwritev", "fdatasync", "fsync",
                              "fallocate", "lseek", "fstat", "newfstatat"}));
    return {};
}

// The main thread is vCPU 0 first; then it stops the loop, joins the other
// threads, flushes the disk, reads its peak RSS and prints the summary.
Result<void> allow_main_extra(SeccompContext& filter) {
    // The summary: the guest's resident pages (mincore over guest memory)
    // and the peak RSS (/proc/self/status was opened before confinement).
    PV_TRY(allow_all(filter, {"getrusage", "mincore"}));
    // stdio looks at stdout once.
    PV_TRY(allow_ioctls(filter, {TCGETS}));
    // Tear-down removes the vsock listening socket <uds> that setup bound
    // (unlink: the only path-taking call any list allows).
    PV_TRY(filter.allow("unlink"));
    return {};
}

Result<void> allow_main(SeccompContext& filter) {
    PV_TRY(allow_vcpu(filter));
    // The disk is flushed once the VM has ended (MicroVm::flush_disk): file
    // data, and for a qcow2 overlay its tables.
    PV_TRY(allow_disk_io(filter));
    // Posting to the event loop wakes it (eventfd write + epoll_ctl re-arm);
    // tear-down closes what setup opened.
    PV_TRY(allow_all(filter, {"epoll_ctl", "close"}));
    PV_TRY(allow_main_extra(filter));
    return {};
}

// Starting the role threads under the process filter: glibc's
// pthread_create (clone3 refused so that it falls back to clone, whose
// flags the filter can check: threads only, never a process), the new
// thread's registration, naming itself, and loading its role's filter.
Result<void> allow_thread_start(SeccompContext& filter) {
    PV_TRY(filter.refuse("clone3", ENOSYS));
    PV_TRY(filter.allow_if("clone", {argument_has(0, CLONE_THREAD | CLONE_VM)}));
    PV_TRY(allow_all(filter, {"set_robust_list", "rseq", "seccomp"}));
    // glibc's own signals (SIGCANCEL 32, SIGSETXID 33), set up with the
    // first thread; SIGXFSZ, ignored with the file size limit.
    for (int signal : {32, 33, SIGXFSZ})
        PV_TRY(filter.allow_if("rt_sigaction", {argument_is(0, static_cast<uint32_t>(signal))}));
    PV_TRY(filter.allow_if("prctl", {argument_is(0, PR_SET_NAME)}));
    PV_TRY(filter.allow_if("prctl", {argument_is(0, PR_SET_NO_NEW_PRIVS)}));
    // The main thread lowers its own process's limits once all threads run.
    PV_TRY(filter.allow_if("prlimit64", {argument_is(0, 0)}));
    return {};
}

// Every role's list together, plus starting threads.
Result<void> allow_process(SeccompContext& filter) {
    PV_TRY(allow_vcpu(filter));
    PV_TRY(allow_event_loop(filter));
    PV_TRY(allow_unix_sockets(filter));
    PV_TRY(allow_disk_io(filter));
    PV_TRY(allow_main_extra(filter));
    PV_TRY(allow_thread_start(filter));
    return {};
}

}  // namespace

std::string_view to_string(ThreadRole role) {
    switch (role) {
        case ThreadRole::Vcpu:
            return "vcpu";
        case ThreadRole::EventLoop:
            return "event-loop";
        case ThreadRole::DiskIo:
            return "disk-io";
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
            PV_TRY(allow_unix_sockets(filter));
            break;
        case ThreadRole::DiskIo:
            PV_TRY(allow_event_loop(filter));
            PV_TRY(allow_disk_io(filter));
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

Result<void> install_process_filter() {
    auto filter = PV_TRY(SeccompContext::create());
    PV_TRY(allow_common(filter));
    PV_TRY(allow_process(filter));
    auto loaded = filter.load(FilterScope::AllThreads);
    if (!loaded)
        return fail(with_context(loaded.error(), "confine every thread"));
    return {};
}

}  // namespace pv::vmm::confine
