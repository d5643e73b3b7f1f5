#include "vmm/confine/policy.hpp"

namespace pv::vmm::confine {

Result<void> confine_process(const Policy& policy) {
    if (!policy.any())
        return {};
    PV_TRY(set_no_new_privs());
    if (policy.identity)
        PV_TRY(drop_identity(*policy.identity));
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
