#pragma once

// The sandbox interface (DESIGN.md "Sandboxes"): a sandbox runs pv-agent
// over the job's copy-on-write overlay and hands the job a connected stream
// to it. Two kinds share this interface: the microVM (a later issue) and the
// jail (jail/jail_sandbox.hpp).
//
// Why the sandbox takes the overlay as a BlockDevice& and not a path: the
// job is the only writer of the overlay (a qcow2 file must never have two
// writers) and commits from that same object afterwards, so the sandbox
// borrows it for its lifetime instead of opening the file a second time.
// The jail serves it in-process through FUSE; the microVM kind can serve it
// the same way or, after device.flush(), hand device.name() to its VMM
// process. Either way the contract for the job is the same: do not touch the
// device between start and teardown, flush it after teardown.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "imgfmt/block_device.hpp"

namespace pv::sandbox {

enum class SandboxKind { Jail, MicroVm };
enum class SandboxRequest { Auto, Jail, MicroVm };

[[nodiscard]] std::string_view kind_name(SandboxKind kind);
// "auto", "jail" or "microvm" (the --sandbox values).
[[nodiscard]] Result<SandboxRequest> parse_request(std::string_view text);

// Which kind a job gets and why; the reason goes into the report and, for
// the jail, is printed loudly because its isolation is weaker.
struct SandboxChoice {
    SandboxKind kind = SandboxKind::Jail;
    std::string reason;
};

// Auto picks the microVM only where it can boot Linux (hardware VMX/SVM and
// a microVM implementation in this build); otherwise the jail, saying why.
[[nodiscard]] Result<SandboxChoice> choose_sandbox(SandboxRequest request);

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
// has connected. OVERLAY must outlive the sandbox.
[[nodiscard]] Result<std::unique_ptr<Sandbox>> start_sandbox(const SandboxChoice& choice,
                                                             img::BlockDevice& overlay,
                                                             const SandboxOptions& options);

}  // namespace pv::sandbox
