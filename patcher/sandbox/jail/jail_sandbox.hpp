#pragma once

// The jail sandbox (DESIGN.md "Sandboxes"): pv-agent as PID 1 of fresh
// mount, pid, ipc, uts and network namespaces, given the overlay as a loop
// device attached to a FUSE export of it, and a Unix socket in a private
// runtime directory to connect back to.
//
// Start: runtime dir → FUSE export → loop device (partitions settled) →
// listening socket → agent (`pv-agent --socket PATH --disk /dev/loopN`) →
// the agent connects. Teardown, in the only order that works: agent gone
// (its namespaces, and so its mounts of the disk, with it) → loop device
// detached → FUSE export unmounted → runtime dir removed. The job then
// flushes the overlay.
//
// Inside, the agent sees only a minimal root (jail_root.hpp) and runs with
// reduced capabilities under a seccomp filter (confinement.hpp). Still
// weaker isolation than the microVM: the host kernel parses the guest
// filesystem and serves every system call of the guest's maintainer
// scripts, which run as root (uid 0 of the host).

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "patcher/sandbox/jail/fuse_export.hpp"
#include "patcher/sandbox/jail/loop_device.hpp"
#include "patcher/sandbox/jail/supervisor.hpp"
#include "patcher/sandbox/runtime_dir.hpp"
#include "patcher/sandbox/sandbox.hpp"

namespace pv::sandbox {

class JailSandbox final : public Sandbox {
  public:
    // REASON says why the jail was chosen (for describe()).
    [[nodiscard]] static Result<std::unique_ptr<JailSandbox>> start(img::BlockDevice& overlay,
                                                                    const SandboxOptions& options,
                                                                    const std::string& reason);
    ~JailSandbox() override;

    [[nodiscard]] SandboxKind kind() const override { return SandboxKind::Jail; }
    [[nodiscard]] const std::string& describe() const override { return m_description; }
    [[nodiscard]] const std::string& log_path() const override { return m_log_path; }
    [[nodiscard]] Fd take_stream() override { return std::move(m_stream); }
    [[nodiscard]] std::optional<AgentOutcome> outcome() const override;
    [[nodiscard]] AgentOutcome wait(std::chrono::milliseconds grace) override;
    [[nodiscard]] Result<AgentOutcome> teardown() override;

    // The loop device the agent was given ("/dev/loop3").
    [[nodiscard]] const std::string& disk_path() const { return m_disk_path; }
    // The runtime directory (runtime_dir.hpp); gone after teardown.
    [[nodiscard]] const std::string& runtime_path() const { return m_runtime_path; }

  private:
    JailSandbox(RuntimeDir dir, std::string log_path, Supervisor::Clock::time_point deadline)
        : m_dir(std::move(dir)),
          m_runtime_path(m_dir.path()),
          m_log_path(std::move(log_path)),
          m_deadline(deadline) {}
    [[nodiscard]] Result<void> attach_disk(img::BlockDevice& overlay);
    [[nodiscard]] Result<void> start_agent(const SandboxOptions& options);
    [[nodiscard]] Result<void> accept_agent(std::chrono::milliseconds timeout);

    RuntimeDir m_dir;
    std::string m_runtime_path;
    std::string m_log_path;
    Supervisor::Clock::time_point m_deadline;
    std::string m_description;
    std::string m_disk_path;
    std::vector<std::string> m_partition_paths;
    // Members are released by teardown() in the order the kernel needs:
    // agent, then loop device, then FUSE export.
    std::optional<FuseExport> m_export;
    std::optional<LoopDevice> m_loop;
    Fd m_listener;
    std::unique_ptr<Supervisor> m_supervisor;
    Fd m_stream;
    std::optional<AgentOutcome> m_final_outcome;
    bool m_torn_down = false;
};

}  // namespace pv::sandbox
