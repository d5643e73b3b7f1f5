#pragma once

// The seccomp allow-lists of patchvisor-vmm's thread roles: each
// thread installs the list of its role once setup is over; anything else it
// calls kills the whole process with SIGSYS (SCMP_ACT_KILL_PROCESS).
//
// Seccomp filters belong to a thread and are inherited by the threads it
// creates; a filter can be added to but never removed, and every filter a
// thread has must allow a syscall. Hence two layers and this order in
// MicroVm::run():
//   1. while the main thread is the only thread of ours, it loads the
//      process filter (the union of all roles' lists, plus starting threads)
//      onto every thread with TSYNC, so that threads a library started
//      during setup (imgfmt's qcow2 write-behind workers) are confined too
//      (skipped when there are none: it would only cost boot time);
//   2. each thread the main thread then starts installs its own role's
//      filter as its first act, on top of the inherited process filter;
//   3. the main thread, which runs vCPU 0 and then tears the VM down,
//      installs the Main list last, once every thread is started: that list
//      no longer allows clone.
// No list allows creating a process, exec, opening a file or a network
// socket, a KVM setup ioctl or executable memory.

#include <string_view>

#include "common/error.hpp"

namespace pv::vmm::confine {

enum class ThreadRole {
    Vcpu,       // runs KVM_RUN and forwards port and MMIO exits to the buses
    EventLoop,  // the Boost.Asio loop: timers, ioeventfds, irqfds, Unix sockets (vsock)
    DiskIo,     // the disk's Asio loop: its doorbells, virtio-blk requests on the image file
    Main,       // vCPU 0, then stop, join and tear down, print the summary, exit
};

[[nodiscard]] std::string_view to_string(ThreadRole role);

// Builds the allow-list of ROLE and installs it on the calling thread.
[[nodiscard]] Result<void> install_thread_filter(ThreadRole role);

// Installs the process filter (step 1) on every thread of the process.
// Fails if a thread already has a filter that is not an ancestor of the
// caller's (i.e. call it before any role filter).
[[nodiscard]] Result<void> install_process_filter();

}  // namespace pv::vmm::confine
