#pragma once

// What the jail's PID 1 may still do once its namespaces and root are set
// up: a capability set and a seccomp filter, both inherited by everything
// pv-agent runs (dpkg, rpm and the guest's maintainer scripts, which run
// arbitrary programs as root on the host kernel).
//
// Capabilities (capabilities(7)): every capability not in
// kept_capabilities() leaves the bounding, permitted, effective,
// inheritable and ambient sets, with no_new_privs set, so no exec (setuid
// or file capabilities included) brings one back. The table in
// confinement.cpp gives the reason for each kept one. CAP_SYS_ADMIN must
// stay: the agent mounts the guest filesystem and the chroot's /proc, /sys
// and /dev when a request arrives, not before exec. The agent drops it
// (with CAP_SYS_CHROOT and CAP_SETPCAP) from the commands it runs in the
// guest (agent/process.cpp).
//
// seccomp (seccomp(2), libseccomp): a deny list over an allow-by-default
// filter, the same for the x86-64, i386 and x32 system call ABIs, so a
// 32-bit binary in the guest cannot step around it. The table in
// confinement.cpp names each denied call and why.
//
// The filter is compiled here, in the parent, because libseccomp
// allocates; the child between clone3 and exec only loads it.

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace pv::sandbox {

struct Confinement {
    // Bit N set keeps capability N.
    uint64_t kept_capabilities = 0;
    std::vector<sock_filter> filter;
};

// The capabilities the jail keeps (bit N = capability N).
[[nodiscard]] uint64_t kept_capabilities();

// One denied system call, for the README and the tests.
struct DeniedCall {
    const char* name;
    int error;  // the errno it fails with
};
[[nodiscard]] std::vector<DeniedCall> denied_calls();

// Compiles the seccomp filter.
[[nodiscard]] Result<Confinement> prepare_confinement();

// In the child, last before exec: sets no_new_privs, drops capabilities,
// loads the filter. Only system calls, so it is safe between clone3 and
// exec. Returns 0, or -1 with errno set.
int apply_confinement(const Confinement& confinement);

}  // namespace pv::sandbox
