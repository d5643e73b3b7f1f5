#pragma once

// An eventfd(2) counter, the object KVM_IOEVENTFD signals and KVM_IRQFD
// waits on. Non-blocking so the event loop's read after a wake-up never
// stalls, close-on-exec like every descriptor of the VMM.

#include <sys/eventfd.h>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace pv::vmm::kvm {

[[nodiscard]] inline Result<Fd> make_eventfd() {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return fail(errno_error("eventfd"));
    return Fd(fd);
}

}  // namespace pv::vmm::kvm
