#pragma once

// The agent's request loop: one request at a time, each answered with
// Log/Progress envelopes and exactly one terminal envelope (agent.proto).

#include <optional>
#include <string>

#include "agent/rootfs.hpp"
#include "agent/staging.hpp"
#include "agent/transport.hpp"

namespace pv::agent {

struct ServerOptions {
    std::string disk;        // block device (or image file) holding the guest
    std::string mountpoint;  // existing empty directory for the guest root
    std::string sandbox;     // "microvm" or "jail", reported in Hello
};

class Server {
  public:
    Server(Channel& channel, ServerOptions options)
        : m_channel(channel), m_options(std::move(options)) {}

    // Serves until Finish succeeded (returns success) or the stream broke.
    [[nodiscard]] Result<void> serve();

    // Unmounts what is still mounted; used when the stream breaks.
    void cleanup();

  private:
    // Each handler returns the terminal envelope's body or an Error.
    [[nodiscard]] Result<wire::Envelope> handle(const wire::Envelope& request);
    [[nodiscard]] Result<wire::Envelope> hello(const wire::Hello& request);
    [[nodiscard]] Result<wire::Envelope> inspect();
    [[nodiscard]] Result<wire::Envelope> read_file(const wire::ReadFile& request);
    [[nodiscard]] Result<wire::Envelope> stage(const wire::StageChunk& chunk);
    [[nodiscard]] Result<wire::Envelope> apply(const wire::Apply& request);
    [[nodiscard]] Result<wire::Envelope> run(const wire::Run& request);
    [[nodiscard]] Result<wire::Envelope> finish();

    // The guest root, found and mounted on first use.
    [[nodiscard]] Result<std::string> root();
    [[nodiscard]] Result<Stager*> stager();

    void send_log(wire::Log::Stream stream, std::string_view line);

    Channel& m_channel;
    ServerOptions m_options;
    std::optional<MountedRoot> m_root;
    std::optional<Stager> m_stager;
    wire::PackageManager m_package_manager = wire::PACKAGE_MANAGER_UNKNOWN;
    uint64_t m_request_id = 0;
    bool m_finished = false;
};

// Maps an agent-side error to the wire Error code (by its errno).
[[nodiscard]] wire::Error::Code error_code_for(const Error& error);

}  // namespace pv::agent
