#include "vmm/confine/policy.hpp"

#include <malloc.h>

namespace pv::vmm::confine {

Result<void> use_one_malloc_arena() {
    if (mallopt(M_ARENA_MAX, 1) != 1)
        return fail(make_error("confine process", "mallopt M_ARENA_MAX refused"));
    return {};
}

Result<void> confine_process(const Policy& policy) {
    if (!policy.any())
        return {};
    PV_TRY(set_no_new_privs());
    if (policy.seccomp)
        PV_TRY(use_one_malloc_arena());
    if (policy.identity)
        PV_TRY(drop_identity(*policy.identity));
    // The process filter is there for threads a library started during
    // setup (imgfmt's qcow2 write-behind workers), which no role filter
    // reaches; without them it would only add its cost (~0.4 ms) to the
    // boot path, so a process of one thread goes without.
    if (policy.seccomp && PV_TRY(thread_count()) > 1)
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
