#pragma once

// The seccomp allow-lists of patchvisor-vmm's thread roles (issue 7): each
// thread installs the list of its role once setup is over; anything else it
// calls kills the whole process with SIGSYS (SCMP_ACT_KILL_PROCESS).
//
// Seccomp filters belong to a thread and are inherited by the threads it
// creates, and a filter can be added to but never removed. Hence the order
// MicroVm::run() follows: the main thread creates every thread while still
// unfiltered, each new thread installs its own role's filter as its first act
// (so no thread carries another role's list stacked on its own), and the main
// thread, which runs vCPU 0 and then tears the VM down, installs the Main
// list last. No role may create threads or processes.

#include <string_view>

#include "common/error.hpp"

namespace pv::vmm::confine {

enum class ThreadRole {
    Vcpu,       // runs KVM_RUN and forwards port and MMIO exits to the buses
    EventLoop,  // the Boost.Asio loop: timers, ioeventfds, irqfds, disk I/O, Unix sockets
    Main,       // vCPU 0, then stop, join and tear down, print the summary, exit
};

[[nodiscard]] std::string_view to_string(ThreadRole role);

// Builds the allow-list of ROLE and installs it on the calling thread.
[[nodiscard]] Result<void> install_thread_filter(ThreadRole role);

}  // namespace pv::vmm::confine
