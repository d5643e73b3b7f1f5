#pragma once

// Whether this host's /dev/kvm can run a Linux guest: the one decision the
// CLI's sandbox choice, the tests and the nested rig's callers all use.

#include <string>

namespace pv::vmm {

// What the decision depends on, read from the host.
struct HostFacts {
    bool kvm_device = false;               // /dev/kvm exists
    std::string kvm_access_error;          // why it cannot be opened read-write; "" if it can
    bool hardware_virtualization = false;  // vmx or svm among the CPU flags
    bool kvm_pvm = false;                  // /dev/kvm is kvm_pvm (software nested)
};
[[nodiscard]] HostFacts probe_host();

// Why a Linux guest cannot run on HOST, or "" when it can. Only hardware
// KVM runs Linux guests: under kvm_pvm guest kernel code is emulated and
// user-mode syscall breaks (shared/PVM.md).
[[nodiscard]] std::string why_no_linux_guest(const HostFacts& host);

}  // namespace pv::vmm
