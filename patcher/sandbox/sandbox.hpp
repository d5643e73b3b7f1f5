#pragma once

// The sandbox interface (DESIGN.md "Sandboxes"): a sandbox runs pv-agent
// over the job's copy-on-write overlay and hands the job a connected stream
// to it. Two kinds share this interface: the microVM
// (microvm/microvm_sandbox.hpp) and the jail (jail/jail_sandbox.hpp).
//
// Why the sandbox takes the overlay as a BlockDevice& and not a path: the
// job owns the overlay object and commits from it afterwards, and a qcow2
// file must never have two writers at once. Two ways of lending it exist
// (overlay_access() below):
//   Shared      the jail serves the job's own object in-process through
//               FUSE; after teardown the job flushes it and commits.
//   HandedOver  the microVM flushes the object, then gives its file
//               (device.name()) to patchvisor-vmm, which opens and writes it
//               through its own imgfmt object. The job's object then holds
//               stale cached metadata (L1/L2 tables, refcounts, the end of
//               the file): after teardown, when the VMM process is reaped and
//               so has written and closed the file, the job drops its object
//               without writing (the flush before hand-over left nothing
//               dirty, so its destructor writes nothing) and reopens the file
//               before committing.
// Either way the job must not touch the device between start and teardown.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "imgfmt/block_device.hpp"
#include "vmm/kvm/host.hpp"

namespace pv::sandbox {

enum class SandboxKind { Jail, MicroVm };
enum class SandboxRequest { Auto, Jail, MicroVm };

[[nodiscard]] std::string_view kind_name(SandboxKind kind);
// "auto", "jail" or "microvm" (the --sandbox values).
[[nodiscard]] Result<SandboxRequest> parse_request(std::string_view text);

// How a sandbox of KIND uses the job's overlay object (see the top).
enum class OverlayAccess { Shared, HandedOver };
[[nodiscard]] OverlayAccess overlay_access(SandboxKind kind);

// What the microVM runs: patchvisor-vmm, a kernel, an initramfs and a
// command line. The job uses the sandbox kernel and the agent initramfs;
// tests put the freestanding test guest there.
struct MicroVmSetup {
    std::string vmm_path;
    std::string kernel_path;
    std::string initrd_path;  // empty: no initrd (the test guest)
    // The kernel command line; " pv.port=N" (the vsock port the agent
    // connects to) is appended. Empty: kLinuxCommandLine.
    std::string cmdline;
    uint32_t memory_mib = 512;
};

// The sandbox kernel's command line (agent/main.cpp reads pv.port= and
// uses /dev/vda): the console on the 8250 UART, reboot through the i8042
// (the only reset patchvisor-vmm has, and how the agent ends the VM), a
// panic reboots at once instead of hanging until the deadline.
inline constexpr const char* kLinuxCommandLine = "console=ttyS0 reboot=k panic=-1 quiet";

// patchvisor-vmm: $PV_VMM, next to the running program, in its build tree
// (../../vmm/), or /usr/lib/patchvisor/. The kernel and initramfs:
// $PV_KERNEL and $PV_INITRAMFS, or /usr/lib/patchvisor/{bzImage,
// initramfs.cpio.gz} (in a source tree: `scripts/images path kernel-bzimage`
// and `scripts/images path initramfs`). Fails naming what is missing.
[[nodiscard]] Result<MicroVmSetup> find_microvm_setup();

// What the automatic choice depends on (vmm/kvm/host.hpp): the microVM
// only where vmm::why_no_linux_guest(vmm::probe_host()) is "".
using vmm::HostFacts;

// Which kind a job gets and why; the reason goes into the report and, for
// the jail, is printed loudly because its isolation is weaker.
struct SandboxChoice {
    SandboxKind kind = SandboxKind::Jail;
    std::string reason;
    MicroVmSetup microvm;  // for the microVM only
};

// Auto picks the microVM only where hardware KVM can run Linux guests and
// its files are found; otherwise the jail, saying why. A forced microvm that
// cannot run fails here, before the job writes anything.
[[nodiscard]] Result<SandboxChoice> choose_sandbox(SandboxRequest request);
// The same decision over given facts (vmm::probe_host(), find_microvm_setup()).
[[nodiscard]] Result<SandboxChoice> choose_sandbox(SandboxRequest request, const HostFacts& host,
                                                   const Result<MicroVmSetup>& setup);

// How the agent ended.
enum class Ending {
    Exited,    // exited on its own; exit_status holds the status
    Signaled,  // killed by a signal we did not send (a crash); signal holds it
    TimedOut,  // killed by the sandbox because the deadline passed
    Stopped,   // killed by teardown while still running
};

struct AgentOutcome {
    Ending ending = Ending::Stopped;
    int exit_status = 0;
    int signal = 0;
    // More about how it ended, e.g. how the microVM ended ("the guest reset
    // the microVM"); appended to describe() in parentheses.
    std::string detail;

    [[nodiscard]] bool succeeded() const { return ending == Ending::Exited && exit_status == 0; }
    // "exited with status 0", "killed by signal 11 (SIGSEGV)", "timed out after 30 s".
    [[nodiscard]] std::string describe() const;
};

struct SandboxOptions {
    // The pv-agent binary; opened before the sandbox changes its view of
    // the filesystem, so any path the caller can open works.
    std::string agent_path;
    // The agent's stdout and stderr (the report's "agent log"). Kept after
    // teardown. Empty: /tmp/patchvisor-agent-<pid>-<n>.log.
    std::string log_path;
    // Everything is killed when this much time has passed since start.
    std::chrono::milliseconds timeout{std::chrono::minutes(10)};
    // The agent must connect within this time (also bounded by timeout).
    std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
    // Where per-sandbox mountpoints and sockets live (see runtime_dir.hpp).
    std::string runtime_root = "/run/patchvisor";
};

class Sandbox {
  public:
    virtual ~Sandbox() = default;
    Sandbox() = default;
    Sandbox(const Sandbox&) = delete;
    Sandbox& operator=(const Sandbox&) = delete;

    [[nodiscard]] virtual SandboxKind kind() const = 0;
    // The kind, what it isolates with, and why it was chosen.
    [[nodiscard]] virtual const std::string& describe() const = 0;
    [[nodiscard]] virtual const std::string& log_path() const = 0;

    // The connected stream to the agent (a socket), handed over once; an
    // invalid Fd afterwards. When the agent dies the stream reads EOF.
    [[nodiscard]] virtual Fd take_stream() = 0;

    // How the agent ended, or nothing while it runs.
    [[nodiscard]] virtual std::optional<AgentOutcome> outcome() const = 0;
    // Waits up to GRACE (never past the deadline) for the agent to end on
    // its own, e.g. after Finish; kills it if it has not.
    [[nodiscard]] virtual AgentOutcome wait(std::chrono::milliseconds grace) = 0;

    // Kills the agent if it still runs and releases every host resource
    // (processes, loop devices, mounts, sockets). Idempotent; tries every
    // step even when one fails and reports the first failure. The
    // destructor does the same.
    [[nodiscard]] virtual Result<AgentOutcome> teardown() = 0;
};

// Starts a sandbox of CHOICE's kind over OVERLAY and waits until the agent
// has connected. OVERLAY must outlive the sandbox, and the calling thread
// should too (child processes die with the thread that started them,
// PR_SET_PDEATHSIG).
[[nodiscard]] Result<std::unique_ptr<Sandbox>> start_sandbox(const SandboxChoice& choice,
                                                             img::BlockDevice& overlay,
                                                             const SandboxOptions& options);

}  // namespace pv::sandbox
