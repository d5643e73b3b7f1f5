#pragma once

// The one place that turns a KVM ioctl into a Result (STYLE.md habit 5): the
// error names the ioctl so a failure reads "KVM_SET_SREGS: Invalid argument".

#include <sys/ioctl.h>

#include <cerrno>

#include "common/error.hpp"

namespace pv::vmm::kvm {

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
