#pragma once

// The one place that turns a KVM ioctl into a Result: the
// error names the ioctl so a failure reads "KVM_SET_SREGS: Invalid argument".

#include <sys/ioctl.h>

#include <linux/kvm.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "common/error.hpp"

namespace pv::vmm::kvm {

// The header of KVM's variable-length arrays (kvm_cpuid2, kvm_msrs): a count
// and padding, entries right after at offset 8. The uapi structs end in
// __DECLARE_FLEX_ARRAY, which C++ compiles to an extra empty struct, making
// them 12 bytes and moving the entries; so the ioctl numbers and buffers are
// built from this header instead.
struct ArrayHeader {
    uint32_t count;
    uint32_t padding;
};
static_assert(sizeof(ArrayHeader) == 8);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, ArrayHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, ArrayHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, ArrayHeader);

// A buffer holding an ArrayHeader followed by `count` entries of T.
template <class Entry>
class ArrayBuffer {
  public:
    explicit ArrayBuffer(uint32_t count)
        : m_bytes(sizeof(ArrayHeader) + size_t{count} * sizeof(Entry), 0) {
        header().count = count;
    }
    ArrayHeader& header() { return *reinterpret_cast<ArrayHeader*>(m_bytes.data()); }
    Entry* entries() { return reinterpret_cast<Entry*>(m_bytes.data() + sizeof(ArrayHeader)); }
    void* data() { return m_bytes.data(); }

  private:
    std::vector<uint8_t> m_bytes;
};

template <class Argument>
[[nodiscard]] Result<int> checked_ioctl(int fd, unsigned long request, const char* name,
                                        Argument argument) {
    for (;;) {
        int result = ::ioctl(fd, request, argument);
        if (result >= 0)
            return result;
        if (errno != EINTR)
            return fail(errno_error(name));
    }
}

}  // namespace pv::vmm::kvm
