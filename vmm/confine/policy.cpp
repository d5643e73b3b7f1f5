#include "vmm/confine/policy.hpp"

#include <malloc.h>

namespace pv::vmm::confine {

Result<void> confine_process(const Policy& policy) {
    if (!policy.any())
        return {};
    PV_TRY(set_no_new_privs());
    // One malloc arena for all threads. A thread's own arena is an mmap'd
    // heap, and shrinking one makes glibc open
    // /proc/sys/vm/overcommit_memory: a filtered thread freeing memory
    // another thread allocated would die of that open. The main arena only
    // grows and shrinks with brk. The VMM's threads allocate little, so
    // sharing one arena costs nothing measurable.
    if (policy.seccomp && mallopt(M_ARENA_MAX, 1) != 1)
        return fail(make_error("confine process", "mallopt M_ARENA_MAX refused"));
    if (policy.identity)
        PV_TRY(drop_identity(*policy.identity));
    if (policy.seccomp)
        PV_TRY(install_process_filter());
    return {};
}

Result<void> confine_thread(const Policy& policy, ThreadRole role) {
    if (policy.seccomp)
        PV_TRY(install_thread_filter(role));
    return {};
}

Result<void> confine_main_thread(const Policy& policy) {
    if (policy.limits)
        PV_TRY(apply_resource_limits(*policy.limits));
    return confine_thread(policy, ThreadRole::Main);
}

}  // namespace pv::vmm::confine
