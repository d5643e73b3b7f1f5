#include "patcher/sandbox/sandbox.hpp"

#include <string.h>

#include <fmt/format.h>

#include "patcher/sandbox/jail/jail_sandbox.hpp"
#include "patcher/sandbox/microvm/microvm_sandbox.hpp"

namespace pv::sandbox {

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

OverlayAccess overlay_access(SandboxKind kind) {
    return kind == SandboxKind::MicroVm ? OverlayAccess::HandedOver : OverlayAccess::Shared;
}

std::string AgentOutcome::describe() const {
    std::string text;
    switch (ending) {
        case Ending::Exited:
            text = fmt::format("exited with status {}", exit_status);
            break;
        case Ending::Signaled: {
            const char* name = ::sigabbrev_np(signal);
            text = fmt::format("was killed by signal {} (SIG{})", signal, name ? name : "?");
            break;
        }
        case Ending::TimedOut:
            text = "was killed at the sandbox deadline";
            break;
        case Ending::Stopped:
            text = "was stopped by teardown";
            break;
    }
    if (!detail.empty())
        text += " (" + detail + ")";
    return text;
}

Result<std::unique_ptr<Sandbox>> start_sandbox(const SandboxChoice& choice,
                                               img::BlockDevice& overlay,
                                               const SandboxOptions& options) {
    if (choice.kind == SandboxKind::MicroVm) {
        std::unique_ptr<Sandbox> microvm =
            PV_TRY(MicroVmSandbox::start(overlay, choice.microvm, options, choice.reason));
        return microvm;
    }
    std::unique_ptr<Sandbox> jail = PV_TRY(JailSandbox::start(overlay, options, choice.reason));
    return jail;
}

}  // namespace pv::sandbox
