// pv-bench-host-probe: whether this host's /dev/kvm can run a Linux guest,
// by the project's one decision (vmm::why_no_linux_guest), for the shell
// benches: where it cannot, bench/boot and bench/patch run their Linux-guest
// comparisons in the nested rig, and libguestfs is forced to TCG.
//
// Prints "yes", or "no: REASON"; exit 0 for yes, 1 for no.

#include <cstdio>
#include <string>

#include "vmm/kvm/host.hpp"

int main() {
    const std::string why_not = pv::vmm::why_no_linux_guest(pv::vmm::probe_host());
    if (why_not.empty()) {
        std::puts("yes");
        return 0;
    }
    std::printf("no: %s\n", why_not.c_str());
    return 1;
}
