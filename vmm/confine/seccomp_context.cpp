#include "vmm/confine/seccomp_context.hpp"

#include <seccomp.h>

#include <string>
#include <utility>
#include <vector>

namespace pv::vmm::confine {

namespace {

// libseccomp returns negative errno values.
Error seccomp_error(std::string operation, int result) {
    return errno_error(std::move(operation), -result);
}

}  // namespace

Result<SeccompContext> SeccompContext::create() {
    scmp_filter_ctx context = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (context == nullptr)
        return fail(make_error("seccomp_init", "libseccomp could not create a filter"));
    SeccompContext owner(context);
    // A syscall through a foreign ABI would bypass the x86_64 numbering the
    // rules are written in; it ends the process like a forbidden one.
    if (int result = seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        result < 0)
        return fail(seccomp_error("seccomp bad-arch action", result));
    // PR_SET_NO_NEW_PRIVS is what lets an unprivileged process load a filter
    // at all; libseccomp sets it on load (the default, made explicit here).
    if (int result = seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 1); result < 0)
        return fail(seccomp_error("seccomp no_new_privs attribute", result));
    // A binary tree of syscall numbers instead of a linear scan: KVM_RUN and
    // the event loop's calls pass through the filter on every exit.
    if (int result = seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2); result < 0)
        return fail(seccomp_error("seccomp optimize attribute", result));
    return owner;
}

SeccompContext::SeccompContext(SeccompContext&& other) noexcept
    : m_context(std::exchange(other.m_context, nullptr)) {}

SeccompContext& SeccompContext::operator=(SeccompContext&& other) noexcept {
    if (this != &other) {
        if (m_context != nullptr)
            seccomp_release(m_context);
        m_context = std::exchange(other.m_context, nullptr);
    }
    return *this;
}

SeccompContext::~SeccompContext() {
    if (m_context != nullptr)
        seccomp_release(m_context);
}

Result<int> SeccompContext::resolve(std::string_view syscall) const {
    int number = seccomp_syscall_resolve_name(std::string(syscall).c_str());
    if (number == __NR_SCMP_ERROR)
        return fail(make_error("seccomp rule", "unknown syscall '" + std::string(syscall) + "'"));
    return number;
}

Result<void> SeccompContext::allow(std::string_view syscall) {
    int number = PV_TRY(resolve(syscall));
    if (int result = seccomp_rule_add(m_context, SCMP_ACT_ALLOW, number, 0); result < 0)
        return fail(seccomp_error("seccomp allow " + std::string(syscall), result));
    return {};
}

Result<void> SeccompContext::allow_if(std::string_view syscall,
                                      std::initializer_list<ArgumentCheck> checks) {
    int number = PV_TRY(resolve(syscall));
    std::vector<scmp_arg_cmp> comparisons;
    for (const auto& check : checks)
        comparisons.push_back({check.index, SCMP_CMP_MASKED_EQ, check.mask, check.value});
    if (int result = seccomp_rule_add_exact_array(m_context, SCMP_ACT_ALLOW, number,
                                                  static_cast<unsigned>(comparisons.size()),
                                                  comparisons.data());
        result < 0)
        return fail(seccomp_error("seccomp allow " + std::string(syscall) + " if", result));
    return {};
}

Result<void> SeccompContext::refuse(std::string_view syscall, int error) {
    int number = PV_TRY(resolve(syscall));
    if (int result =
            seccomp_rule_add(m_context, SCMP_ACT_ERRNO(static_cast<uint16_t>(error)), number, 0);
        result < 0)
        return fail(seccomp_error("seccomp refuse " + std::string(syscall), result));
    return {};
}

Result<void> SeccompContext::load(FilterScope scope) const {
    if (scope == FilterScope::AllThreads) {
        if (int result = seccomp_attr_set(m_context, SCMP_FLTATR_CTL_TSYNC, 1); result < 0)
            return fail(seccomp_error("seccomp thread sync attribute", result));
    }
    if (int result = seccomp_load(m_context); result < 0)
        return fail(seccomp_error("seccomp_load", result));
    return {};
}

}  // namespace pv::vmm::confine
