#include "patcher/sandbox/sandbox.hpp"

#include <string.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "patcher/sandbox/jail/jail_sandbox.hpp"

namespace pv::sandbox {

namespace {

// Whether the CPU offers VMX or SVM to us. Without them /dev/kvm (if any)
// is software nested virtualization (kvm_pvm here), under which Linux
// guests do not run (DESIGN.md "Sandboxes").
bool hardware_virtualization() {
    if (::access("/dev/kvm", R_OK | W_OK) != 0)
        return false;
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

std::string_view kind_name(SandboxKind kind) {
    return kind == SandboxKind::Jail ? "jail" : "microvm";
}

Result<SandboxRequest> parse_request(std::string_view text) {
    if (text == "auto")
        return SandboxRequest::Auto;
    if (text == "jail")
        return SandboxRequest::Jail;
    if (text == "microvm")
        return SandboxRequest::MicroVm;
    return fail(make_error("--sandbox " + std::string(text), "expected auto, jail or microvm"));
}

Result<SandboxChoice> choose_sandbox(SandboxRequest request) {
    // The microVM sandbox arrives with a later issue; until then it can be
    // neither requested nor picked.
    constexpr const char* kNoMicroVm = "the microVM sandbox is not part of this build yet";
    switch (request) {
        case SandboxRequest::Jail:
            return SandboxChoice{SandboxKind::Jail, "it was requested (--sandbox jail)"};
        case SandboxRequest::MicroVm:
            return fail(make_error("choose the microvm sandbox", kNoMicroVm));
        case SandboxRequest::Auto:
            break;
    }
    if (!hardware_virtualization())
        return SandboxChoice{SandboxKind::Jail,
                             "this machine has no hardware virtualization (VMX/SVM) for the "
                             "microVM to boot Linux"};
    return SandboxChoice{SandboxKind::Jail, kNoMicroVm};
}

std::string AgentOutcome::describe() const {
    switch (ending) {
        case Ending::Exited:
            return fmt::format("exited with status {}", exit_status);
        case Ending::Signaled: {
            const char* name = ::sigabbrev_np(signal);
            return fmt::format("was killed by signal {} (SIG{})", signal, name ? name : "?");
        }
        case Ending::TimedOut:
            return "was killed at the sandbox deadline";
        case Ending::Stopped:
            return "was stopped by teardown";
    }
    return "ended";
}

Result<std::unique_ptr<Sandbox>> start_sandbox(const SandboxChoice& choice,
                                               img::BlockDevice& overlay,
                                               const SandboxOptions& options) {
    if (choice.kind == SandboxKind::MicroVm)
        return fail(make_error("start the microvm sandbox",
                               "the microVM sandbox is not part of this build yet"));
    std::unique_ptr<Sandbox> jail = PV_TRY(JailSandbox::start(overlay, options, choice.reason));
    return jail;
}

}  // namespace pv::sandbox
