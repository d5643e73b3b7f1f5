// Which sandbox a job gets (DESIGN.md "Sandboxes"): the microVM where
// hardware KVM can boot its Linux kernel, the jail elsewhere.

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "patcher/sandbox/sandbox.hpp"

namespace pv::sandbox {

namespace {

constexpr const char* kInstallDirectory = "/usr/lib/patchvisor";

std::string environment(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

// The first of CANDIDATES that is a regular file we may read (or, with
// EXECUTABLE, run); "" when none is.
std::string first_usable(const std::vector<std::filesystem::path>& candidates, bool executable) {
    for (const auto& candidate : candidates) {
        struct stat status {};
        if (candidate.empty() || ::stat(candidate.c_str(), &status) != 0 ||
            !S_ISREG(status.st_mode))
            continue;
        if (::access(candidate.c_str(), executable ? X_OK : R_OK) == 0)
            return candidate.lexically_normal().string();
    }
    return "";
}

// A file named by VARIABLE must exist: a typo there should not silently fall
// back to another kernel.
Result<std::string> locate(const char* what, const char* variable,
                           std::vector<std::filesystem::path> fallbacks, bool executable,
                           const char* hint) {
    if (const std::string named = environment(variable); !named.empty()) {
        if (first_usable({named}, executable).empty())
            return fail(make_error(fmt::format("find the microVM's {}", what),
                                   fmt::format("{}={} is not a usable file", variable, named)));
        return named;
    }
    if (std::string found = first_usable(fallbacks, executable); !found.empty())
        return found;
    return fail(make_error(
        fmt::format("find the microVM's {}", what),
        fmt::format("set {} or install it in {} ({})", variable, kInstallDirectory, hint)));
}

}  // namespace

Result<MicroVmSetup> find_microvm_setup() {
    std::error_code error;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", error).parent_path();
    const std::filesystem::path installed(kInstallDirectory);
    // Where cmake --install puts them under any prefix: PREFIX/lib/patchvisor.
    const auto prefix = self / "../lib/patchvisor";
    MicroVmSetup setup;
    setup.vmm_path = PV_TRY(locate("VMM", "PV_VMM",
                                   {self / "patchvisor-vmm", self / "../../vmm/patchvisor-vmm",
                                    prefix / "patchvisor-vmm", installed / "patchvisor-vmm"},
                                   true, "it is built as vmm/patchvisor-vmm"));
    setup.kernel_path =
        PV_TRY(locate("kernel", "PV_KERNEL", {prefix / "bzImage", installed / "bzImage"}, false,
                      "`scripts/images path kernel-bzimage` in a source tree"));
    setup.initrd_path =
        PV_TRY(locate("agent initramfs", "PV_INITRAMFS",
                      {prefix / "initramfs.cpio.gz", installed / "initramfs.cpio.gz"}, false,
                      "`scripts/images path initramfs` in a source tree"));
    setup.cmdline = kLinuxCommandLine;
    return setup;
}

Result<SandboxChoice> choose_sandbox(SandboxRequest request) {
    if (request == SandboxRequest::Jail)
        return choose_sandbox(request, HostFacts{}, MicroVmSetup{});
    return choose_sandbox(request, vmm::probe_host(), find_microvm_setup());
}

Result<SandboxChoice> choose_sandbox(SandboxRequest request, const HostFacts& host,
                                     const Result<MicroVmSetup>& setup) {
    if (request == SandboxRequest::Jail)
        return SandboxChoice{SandboxKind::Jail, "it was requested (--sandbox jail)", {}};
    const std::string no_kvm = vmm::why_no_linux_guest(host);
    if (request == SandboxRequest::MicroVm) {
        if (!no_kvm.empty())
            return fail(make_error("use the microvm sandbox (--sandbox microvm)",
                                   no_kvm + "; use --sandbox jail or auto"));
        if (!setup)
            return fail(with_context(setup.error(), "use the microvm sandbox (--sandbox microvm)"));
        return SandboxChoice{SandboxKind::MicroVm, "it was requested (--sandbox microvm)", *setup};
    }
    if (!no_kvm.empty())
        return SandboxChoice{SandboxKind::Jail, no_kvm, {}};
    if (!setup)
        return SandboxChoice{
            SandboxKind::Jail,
            "hardware KVM is here but the microVM cannot start: " + setup.error().message(),
            {}};
    return SandboxChoice{SandboxKind::MicroVm,
                         "hardware KVM (VMX/SVM and /dev/kvm) can run its Linux guest", *setup};
}

}  // namespace pv::sandbox
