#include "vmm/kvm/host.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace pv::vmm {

namespace {

// Whether the "flags" line of /proc/cpuinfo names vmx (Intel VT-x) or svm
// (AMD-V). Under kvm_pvm the guest CPU shows neither.
bool cpu_has_virtualization() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("flags", 0) != 0)
            continue;
        std::istringstream flags(line.substr(line.find(':') + 1));
        std::string flag;
        while (flags >> flag)
            if (flag == "vmx" || flag == "svm")
                return true;
        return false;
    }
    return false;
}

}  // namespace

HostFacts probe_host() {
    HostFacts host;
    struct stat status {};
    host.kvm_device = ::stat("/dev/kvm", &status) == 0;
    if (host.kvm_device && ::access("/dev/kvm", R_OK | W_OK) != 0)
        host.kvm_access_error = std::strerror(errno);
    host.hardware_virtualization = cpu_has_virtualization();
    host.kvm_pvm = ::access("/sys/module/kvm_pvm", F_OK) == 0;
    return host;
}

std::string why_no_linux_guest(const HostFacts& host) {
    if (!host.kvm_device)
        return "this host has no /dev/kvm";
    if (!host.kvm_access_error.empty())
        return "/dev/kvm cannot be opened read-write (" + host.kvm_access_error + ")";
    if (!host.hardware_virtualization || host.kvm_pvm)
        return fmt::format(
            "this host has no hardware virtualization: {}; a Linux guest needs VMX/SVM (under "
            "software nested KVM its kernel is emulated and its syscalls break)",
            host.kvm_pvm ? "/dev/kvm is kvm_pvm (software nested virtualization)"
                         : "the CPU flags in /proc/cpuinfo show neither vmx nor svm");
    return "";
}

}  // namespace pv::vmm
