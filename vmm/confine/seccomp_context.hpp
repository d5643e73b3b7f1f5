#pragma once

// The one wrapper around libseccomp: a move-only owner of
// a filter context whose default action kills the whole process. Callers
// allow syscalls by name, optionally only when their arguments match, and
// load the result into the calling thread.

#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "common/error.hpp"

namespace pv::vmm::confine {

// A condition on one syscall argument: (argument & mask) == value.
struct ArgumentCheck {
    unsigned index = 0;
    uint64_t mask = 0;
    uint64_t value = 0;
};

// The argument equals VALUE in its low 32 bits. ioctl's request and
// socket's domain are C ints: compared in 32 bits, a sign-extended request
// such as KVM_GET_REGS (bit 31 set) still matches.
[[nodiscard]] constexpr ArgumentCheck argument_is(unsigned index, uint32_t value) {
    return {index, 0xffffffffu, value};
}

// None of BITS is set in the argument (e.g. no PROT_EXEC in mmap's prot).
[[nodiscard]] constexpr ArgumentCheck argument_lacks(unsigned index, uint64_t bits) {
    return {index, bits, 0};
}

// Every one of BITS is set in the argument (e.g. CLONE_THREAD in clone's flags).
[[nodiscard]] constexpr ArgumentCheck argument_has(unsigned index, uint64_t bits) {
    return {index, bits, bits};
}

// Which threads a loaded filter applies to.
enum class FilterScope {
    CallingThread,  // and the threads it creates afterwards
    // Every thread of the process (SECCOMP_FILTER_FLAG_TSYNC); fails unless
    // each one's current filter is an ancestor of the caller's.
    AllThreads,
};

class SeccompContext {
  public:
    // A filter that kills the process (SIGSYS) on any syscall not allowed,
    // and on any syscall made through another ABI (x32, int 0x80).
    [[nodiscard]] static Result<SeccompContext> create();

    SeccompContext(SeccompContext&& other) noexcept;
    SeccompContext& operator=(SeccompContext&& other) noexcept;
    SeccompContext(const SeccompContext&) = delete;
    SeccompContext& operator=(const SeccompContext&) = delete;
    ~SeccompContext();

    // Allows SYSCALL (its name in the kernel's table, e.g. "pread64"), with
    // any arguments.
    [[nodiscard]] Result<void> allow(std::string_view syscall);
    // Allows SYSCALL only when every check holds. Several calls for the same
    // syscall allow it when any one of them matches.
    [[nodiscard]] Result<void> allow_if(std::string_view syscall,
                                        std::initializer_list<ArgumentCheck> checks);
    // Makes SYSCALL fail with ERROR instead of killing (clone3 answers
    // ENOSYS so glibc falls back to clone, whose flags a filter can read).
    [[nodiscard]] Result<void> refuse(std::string_view syscall, int error);
    // Installs the filter; with CallingThread the other threads keep theirs.
    [[nodiscard]] Result<void> load(FilterScope scope = FilterScope::CallingThread) const;

  private:
    explicit SeccompContext(void* context) : m_context(context) {}
    [[nodiscard]] Result<int> resolve(std::string_view syscall) const;

    void* m_context = nullptr;  // scmp_filter_ctx
};

}  // namespace pv::vmm::confine
