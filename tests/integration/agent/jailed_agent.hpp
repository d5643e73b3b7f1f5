#pragma once

// Test harness: pv-agent as PID 1 of fresh mount, PID and network
// namespaces (unshare -m -p -n --fork) over a loop-attached disk image,
// connected to the test through a Unix socket. Like the jail sandbox, minus
// FUSE and the overlay.

#include <sys/types.h>

#include <optional>
#include <string>

#include "common/fd.hpp"
#include "patcher/session.hpp"
#include "proto/framing.hpp"

namespace pv::test {

// Why the jail cannot run here, or "" when it can (root, namespaces, loop).
[[nodiscard]] std::string jail_unavailable_reason();

// The version of package NAME in an agent's inventory, "" when absent.
[[nodiscard]] std::string version_of(const wire::InspectResult& inventory, const std::string& name);

class JailedAgent {
  public:
    // Loop-attaches `image` (the test's own copy) and starts the agent.
    [[nodiscard]] static Result<JailedAgent> start(const std::string& image,
                                                   const std::string& workdir);

    JailedAgent(JailedAgent&& other) noexcept;
    JailedAgent& operator=(JailedAgent&&) = delete;
    ~JailedAgent();

    // The connection, for the host session or for raw frames.
    [[nodiscard]] Fd take_connection() { return std::move(m_connection); }

    // Waits for the agent to exit (after Finish) and detaches the loop
    // device; returns the agent's exit status.
    [[nodiscard]] int wait_and_detach();

    [[nodiscard]] std::string log() const;
    [[nodiscard]] const std::string& loop_device() const { return m_loop; }

  private:
    JailedAgent() = default;
    pid_t m_pid = -1;
    std::string m_loop;
    std::string m_log_path;
    Fd m_connection;
};

// Blocking raw frame client, to send requests the session would never send.
class RawClient {
  public:
    explicit RawClient(Fd fd) : m_fd(std::move(fd)) {}
    [[nodiscard]] Result<void> send(const wire::Envelope& envelope);
    [[nodiscard]] Result<void> send_bytes(const std::string& bytes);
    // The next envelope that is not a Log or Progress, waiting at most 60 s.
    [[nodiscard]] Result<wire::Envelope> receive_terminal();

  private:
    Fd m_fd;
    proto::FrameDecoder m_decoder;
};

}  // namespace pv::test
