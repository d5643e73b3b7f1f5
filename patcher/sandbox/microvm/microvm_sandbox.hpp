#pragma once

// The microvm sandbox (DESIGN.md "Sandboxes"): pv-agent as PID 1 of a
// Linux microVM, a `patchvisor-vmm` child process given the sandbox kernel,
// the agent initramfs, the job's overlay as its only disk (virtio-blk) and
// a virtio-vsock device whose host side is a Unix socket (hybrid vsock); no
// network device exists. The guest's console is the sandbox's log.
//
// Start: runtime dir → overlay flushed and handed over (sandbox.hpp) →
// listening socket <dir>/vsock.sock_<port> (a guest connection to host
// port P arrives on "<uds>_P") → patchvisor-vmm with --timeout-s at the
// deadline → the agent connects (only the VMM's pid is accepted) → the
// socket file goes. Teardown: VMM killed if still running and reaped (so
// it no longer writes the overlay) → sockets removed → the VMM's stderr
// appended to the log → runtime dir removed. The job then reopens the
// overlay (OverlayAccess::HandedOver).
//
// Runtime directory entries, for `patchvisor gc` after a crash of
// patchvisor itself (runtime_dir.hpp): vsock.sock (bound by the VMM) and
// vsock.sock_<port>. The VMM itself dies with patchvisor (PR_SET_PDEATHSIG).

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/fd.hpp"
#include "patcher/sandbox/microvm/vmm_command.hpp"
#include "patcher/sandbox/microvm/vmm_process.hpp"
#include "patcher/sandbox/runtime_dir.hpp"
#include "patcher/sandbox/sandbox.hpp"

namespace pv::sandbox {

class MicroVmSandbox final : public Sandbox {
  public:
    using Clock = std::chrono::steady_clock;

    // REASON says why the microVM was chosen (for describe()).
    [[nodiscard]] static Result<std::unique_ptr<MicroVmSandbox>> start(
        img::BlockDevice& overlay, const MicroVmSetup& setup, const SandboxOptions& options,
        const std::string& reason);
    ~MicroVmSandbox() override;

    [[nodiscard]] SandboxKind kind() const override { return SandboxKind::MicroVm; }
    [[nodiscard]] const std::string& describe() const override { return m_description; }
    // The guest's serial console, then what patchvisor-vmm printed.
    [[nodiscard]] const std::string& log_path() const override { return m_log_path; }
    [[nodiscard]] Fd take_stream() override { return std::move(m_stream); }
    [[nodiscard]] std::optional<AgentOutcome> outcome() const override;
    [[nodiscard]] AgentOutcome wait(std::chrono::milliseconds grace) override;
    [[nodiscard]] Result<AgentOutcome> teardown() override;

    // The runtime directory (runtime_dir.hpp); gone after teardown.
    [[nodiscard]] const std::string& runtime_path() const { return m_runtime_path; }
    // The VMM's pid while it runs (for tests), -1 before.
    [[nodiscard]] pid_t vmm_pid() const { return m_vmm ? m_vmm->pid() : -1; }

  private:
    MicroVmSandbox(RuntimeDir dir, std::string log_path, Clock::time_point deadline);
    [[nodiscard]] Result<void> listen_for_agent();
    [[nodiscard]] Result<void> start_vmm(const img::BlockDevice& overlay,
                                         const MicroVmSetup& setup);
    [[nodiscard]] Result<void> accept_agent(std::chrono::milliseconds timeout);
    // Reaps the ended VMM (killing it first with KILL) and records how it ended.
    [[nodiscard]] AgentOutcome finish_vmm(bool kill);
    [[nodiscard]] AgentOutcome outcome_of(const ChildEnd& end, bool killed) const;
    [[nodiscard]] Result<void> append_vmm_errors() const;

    RuntimeDir m_dir;
    std::string m_runtime_path;
    std::string m_log_path;
    std::string m_uds_path;
    std::string m_port_socket_path;
    Clock::time_point m_deadline;
    std::string m_description;
    Fd m_listener;
    Fd m_vmm_stdout;  // memfds: the --json summary and the VMM's errors
    Fd m_vmm_stderr;
    std::optional<VmmProcess> m_vmm;
    Fd m_stream;
    std::optional<AgentOutcome> m_ended;  // once the VMM has been reaped
    bool m_torn_down = false;
};

}  // namespace pv::sandbox
