#pragma once

// The agent's end of the byte stream to the host: AF_VSOCK in the microVM,
// a Unix socket in the jail. Blocking I/O: the agent serves one request at a
// time and the host enforces the deadlines.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "proto/agent.pb.h"
#include "proto/framing.hpp"

namespace pv::agent {

class Channel {
  public:
    [[nodiscard]] static Result<Channel> connect_unix(const std::string& path);
    // Connects to the host (CID 2), retrying while the vsock device settles.
    [[nodiscard]] static Result<Channel> connect_vsock(uint32_t port);

    [[nodiscard]] Result<void> send(const wire::Envelope& envelope);

    // The next envelope. A frame that is whole but unparsable or of an
    // unknown type fails with EBADMSG/ENOMSG and the stream stays usable;
    // any other error means the stream is gone.
    [[nodiscard]] Result<wire::Envelope> receive();

  private:
    explicit Channel(Fd fd) : m_fd(std::move(fd)) {}
    Fd m_fd;
    proto::FrameDecoder m_decoder;
};

// The vsock port from a kernel command line ("... pv.port=5000 ..").
[[nodiscard]] Result<uint32_t> port_from_cmdline(std::string_view cmdline);

}  // namespace pv::agent
