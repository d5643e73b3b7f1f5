#pragma once

// The hybrid vsock backend of Firecracker and Cloud Hypervisor, so their
// tooling works with patchvisor-vmm unchanged:
//  - a guest connection to host port P is forwarded to the Unix socket
//    "<uds>_P" (refused with a RST when nobody listens there);
//  - a host client connecting to "<uds>" and sending "CONNECT P\n" is
//    answered "OK <host port>\n" once guest port P accepts, and is then
//    bridged to it (closed without an answer if the guest refuses).
// Everything runs on the VMM's Boost.Asio event loop. A socket is read only
// while the device has room for its bytes (guest credit and RX buffers), so
// a slow guest slows the host peer instead of filling host memory.

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/error.hpp"
#include "vmm/devices/vsock/backend.hpp"

namespace pv::vmm::vsock {

class UnixSocketBackend final : public VsockBackend {
  public:
    // Listens on UDS_PATH, which must not exist yet; it is removed again by
    // the destructor.
    [[nodiscard]] static Result<std::unique_ptr<UnixSocketBackend>> create(
        boost::asio::io_context& events, std::string uds_path);
    ~UnixSocketBackend() override;

    UnixSocketBackend(const UnixSocketBackend&) = delete;
    UnixSocketBackend& operator=(const UnixSocketBackend&) = delete;

    void attach(VsockHost& host) override { m_host = &host; }
    void connect(ConnectionId id, uint32_t port) override;
    void guest_answered(ConnectionId id, Answer answer) override;
    void receive(ConnectionId id, std::span<const uint8_t> data) override;
    void guest_shutdown(ConnectionId id) override;
    void close(ConnectionId id) override;
    void writable(ConnectionId id) override;

  private:
    struct Stream;
    using StreamPtr = std::shared_ptr<Stream>;

    UnixSocketBackend(boost::asio::io_context& events, std::string uds_path);

    void accept_next();
    void read_handshake(StreamPtr stream);
    void handle_handshake(const StreamPtr& stream, size_t line_length);
    void send_ok(StreamPtr stream);
    void start_bridge(const StreamPtr& stream);
    void start_read(StreamPtr stream);
    void start_write(StreamPtr stream);
    void fail_stream(const StreamPtr& stream);
    void finish(const StreamPtr& stream);
    [[nodiscard]] StreamPtr find(ConnectionId id) const;

    boost::asio::io_context& m_events;
    std::string m_uds_path;
    boost::asio::local::stream_protocol::acceptor m_acceptor;
    VsockHost* m_host = nullptr;
    std::unordered_map<ConnectionId, StreamPtr> m_streams;
    // Completion handlers hold a weak copy: once the backend is gone they
    // must not touch it, even if the loop runs again.
    std::shared_ptr<char> m_alive = std::make_shared<char>();
};

}  // namespace pv::vmm::vsock
