#pragma once

// The host's side of the agent's first exchange, for pv-boot-timer
// --listen: where the agent connects (a Unix socket for patchvisor-vmm's
// hybrid vsock convention, AF_VSOCK for QEMU's vhost-vsock), the Hello
// request, and the agent's Hello reply (proto/agent.proto).

#include <optional>
#include <string>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "proto/framing.hpp"

namespace pv::bench {

class HelloListener {
  public:
    // WHERE is "unix:PATH" (removed again when the listener ends) or
    // "vsock:PORT" (any CID).
    [[nodiscard]] static Result<HelloListener> listen(const std::string& where);
    HelloListener(HelloListener&&) = default;
    HelloListener& operator=(HelloListener&&) = delete;
    HelloListener(const HelloListener&) = delete;
    HelloListener& operator=(const HelloListener&) = delete;
    ~HelloListener();

    // What to poll for POLLIN: the listening socket until the agent has
    // connected, then the connection; -1 once the exchange is over.
    [[nodiscard]] int fd() const;
    [[nodiscard]] bool connected() const { return m_connection.valid(); }

    // Handles the descriptor's readiness: accepts the agent and sends Hello,
    // or reads its reply. Returns the reply, said in one line, once it is
    // complete, and then closes the connection (the agent ends the VM).
    [[nodiscard]] Result<std::optional<std::string>> on_readable();

  private:
    HelloListener(Fd listening, std::string unix_path)
        : m_listening(std::move(listening)), m_unix_path(std::move(unix_path)) {}

    Fd m_listening;
    Fd m_connection;
    std::string m_unix_path;
    proto::FrameDecoder m_decoder;
    bool m_done = false;
};

}  // namespace pv::bench
