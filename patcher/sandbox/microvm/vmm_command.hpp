#pragma once

// What the microvm sandbox tells patchvisor-vmm, and how it reads the way
// the VMM ended back into an AgentOutcome. Pure functions, unit-tested
// without KVM (tests/unit/sandbox).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "patcher/sandbox/microvm/vmm_process.hpp"
#include "patcher/sandbox/sandbox.hpp"

namespace pv::sandbox {

// The guest's CID (VIRTIO 1.2 §5.10.4: 0-2 are reserved, 2 is the host) and
// the host port the agent connects to. Each sandbox has its own VMM and
// socket directory, so fixed values never collide.
inline constexpr uint32_t kGuestCid = 3;
inline constexpr uint32_t kAgentPort = 1024;

struct VmmCommand {
    MicroVmSetup setup;
    std::string disk_path;  // the overlay file
    bool disk_read_only = false;
    std::string vsock_uds;   // the hybrid vsock socket; the agent reaches <uds>_<port>
    std::string serial_log;  // the guest's console: the sandbox's log
    std::chrono::milliseconds timeout{0};
};

// The kernel command line: SETUP's (kLinuxCommandLine by default) and the
// port the agent connects to.
[[nodiscard]] std::string guest_command_line(const MicroVmSetup& setup, uint32_t port);

// argv of patchvisor-vmm, argv[0] first. No network device exists in the
// VMM at all; the disk and vsock are the guest's only ways out.
[[nodiscard]] std::vector<std::string> vmm_arguments(const VmmCommand& command);

// The Unix socket a guest connection to host port PORT arrives on
// (Firecracker's hybrid vsock convention: "<uds>_<port>").
[[nodiscard]] std::string port_socket_path(const std::string& vsock_uds, uint32_t port);

// Everything known about a VMM that ended.
struct VmmEnd {
    ChildEnd process;
    std::string summary_json;  // its --json line on stdout ("" if none)
    std::string stderr_text;
    std::string serial_tail;  // the end of the guest console log
    bool killed_by_sandbox = false;
    bool past_deadline = false;
};

// Reset or power-off: the guest ended the VM on purpose (the agent reboots
// after Finish) → Exited 0, unless its console shows a kernel panic
// (panic=-1 turns a panic into a reset too) → Exited 1, or the agent's
// "pv-agent: exit status N" line with N > 0 → Exited N. The VMM's own
// --timeout-s → TimedOut. Any other way the VM ended (triple fault,
// emulation failure, host error) → Exited with the VMM's status, the reason
// in detail. Our SIGKILL → Stopped, or TimedOut past the deadline; another
// signal → Signaled (the VMM crashed).
[[nodiscard]] AgentOutcome agent_outcome(const VmmEnd& end);

}  // namespace pv::sandbox
