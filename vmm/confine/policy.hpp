#pragma once

// What confinement a microVM runs under, and the three moments MicroVm::run()
// applies it (thread_filters.hpp says why in this order):
//   1. before any thread of run()'s starts: no_new_privs, the drop to an
//      unprivileged identity (before any filter: glibc has every thread call
//      setresuid; setup has opened every file and /dev/kvm by then), then
//      the process filter on every thread if setup left threads behind;
//   2. first thing in each new thread: that thread's role filter;
//   3. in the main thread once every thread is started: the resource limits
//      (after everything run() opens for itself), then the Main filter last.
// The library's default is no confinement: an embedder's process has its own
// threads and needs; patchvisor-vmm turns it all on.

#include <optional>

#include "common/error.hpp"
#include "vmm/confine/process_limits.hpp"
#include "vmm/confine/thread_filters.hpp"

namespace pv::vmm::confine {

struct Policy {
    bool seccomp = false;
    std::optional<ResourceLimits> limits;
    std::optional<Identity> identity;

    [[nodiscard]] bool any() const { return seccomp || limits || identity; }
};

// One malloc arena for all threads. A thread's own arena is an mmap'd heap,
// and shrinking one makes glibc open /proc/sys/vm/overcommit_memory: a
// filtered thread freeing memory another thread allocated would die of that
// open. The main arena only grows and shrinks with brk. The VMM's threads
// allocate little, so sharing one arena costs nothing measurable. Best called
// before any thread starts (patchvisor-vmm's main does); confine_process
// calls it too, for threads started later.
[[nodiscard]] Result<void> use_one_malloc_arena();

// Moment 1. With an identity, no thread may have a seccomp filter yet.
[[nodiscard]] Result<void> confine_process(const Policy& policy);
// Moment 2, in a new thread of ROLE.
[[nodiscard]] Result<void> confine_thread(const Policy& policy, ThreadRole role);
// Moment 3, in the main thread.
[[nodiscard]] Result<void> confine_main_thread(const Policy& policy);

}  // namespace pv::vmm::confine
