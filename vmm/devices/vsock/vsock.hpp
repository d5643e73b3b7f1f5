#pragma once

// virtio-vsock (virtio 1.2 §5.10): stream sockets between the guest and a
// VsockBackend on the host. Queues: 0 RX (device → driver), 1 TX (driver →
// device), 2 event (never used: we do not migrate). The guest is hostile:
// every TX header field is checked (source CID must be the guest's,
// destination the host's, type stream, a known op, len within the buffer
// and within the credit we advertised); a bad packet to a known stream
// resets it, one we cannot place gets a RST, a spoofed source gets nothing.
//
// Nothing grows without bound: per stream the guest can make us hold at
// most `buffer_size` bytes (our advertised buf_alloc, enforced) and the
// host at most `pending_limit` (the backend reads only send_capacity()).
// Streams are capped at `max_connections`; RSTs owed to the guest are
// capped at `max_replies`, and TX processing waits while that queue is full,
// so a guest that posts no RX buffers only stalls itself.
//
// Threading: all processing runs on the VMM's event loop. queue_notify()
// from a vCPU thread is dispatched there; activate() and reset() take the
// lock and post what touches the backend.

#include <boost/asio/io_context.hpp>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "vmm/devices/vsock/backend.hpp"
#include "vmm/devices/vsock/connection.hpp"
#include "vmm/devices/vsock/packet.hpp"
#include "vmm/virtio/device.hpp"

namespace pv::vmm::vsock {

inline constexpr uint16_t kQueueRx = 0;
inline constexpr uint16_t kQueueTx = 1;
inline constexpr uint16_t kQueueEvent = 2;

struct VsockOptions {
    uint64_t guest_cid = kFirstGuestCid;
    uint16_t queue_size = 256;
    uint32_t buffer_size = 256 * 1024;    // buf_alloc we advertise per stream
    uint32_t pending_limit = 256 * 1024;  // host → guest bytes held per stream
    size_t max_connections = 64;
    size_t max_replies = 64;
    uint32_t first_host_port = 1u << 30;  // local ports of host-initiated streams
};

// Counters for tests and diagnostics.
struct VsockStats {
    uint64_t dropped_packets = 0;  // spoofed source or unparseable chain
    uint64_t resets_sent = 0;
};

class VirtioVsock final : public virtio::VirtioDevice,
                          public VsockHost,
                          public std::enable_shared_from_this<VirtioVsock> {
  public:
    // GUEST_CID must be >= 3 (§5.10.4) and fit in 32 bits (Linux uses u32 CIDs).
    [[nodiscard]] static Result<std::shared_ptr<VirtioVsock>> create(
        VsockOptions options, std::unique_ptr<VsockBackend> backend,
        boost::asio::io_context& events);

    // virtio::VirtioDevice
    [[nodiscard]] uint32_t device_type() const override { return virtio::kDeviceIdVsock; }
    [[nodiscard]] std::vector<uint16_t> queue_max_sizes() const override;
    [[nodiscard]] uint64_t device_features() const override { return kFeatureStream; }
    void read_config(uint64_t offset, std::span<uint8_t> data) const override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    [[nodiscard]] Result<void> activate(uint64_t acked_features, std::vector<virtio::Queue> queues,
                                        virtio::Interrupt& interrupt) override;
    void reset() override;
    void queue_notify(uint16_t queue) override;

    // VsockHost
    void connect_done(ConnectionId id, Answer answer) override;
    [[nodiscard]] std::optional<Outgoing> connect_guest(uint32_t guest_port) override;
    [[nodiscard]] uint32_t send_capacity(ConnectionId id) override;
    void send(ConnectionId id, std::span<const uint8_t> data) override;
    void consumed(ConnectionId id, uint32_t bytes) override;
    void host_shutdown(ConnectionId id) override;
    void host_reset(ConnectionId id) override;

    [[nodiscard]] size_t connection_count() const;
    [[nodiscard]] VsockStats stats() const;
    [[nodiscard]] const VsockOptions& options() const { return m_options; }

    VirtioVsock(VsockOptions options, std::unique_ptr<VsockBackend> backend,
                boost::asio::io_context& events);

  private:
    // (guest port, host port): a stream's address from the guest's side.
    using Key = std::pair<uint32_t, uint32_t>;

    // vsock_queues.cpp: moving packets through the rings.
    void process();
    void process_tx();
    void process_rx();
    [[nodiscard]] std::optional<PacketHeader> next_packet(uint32_t room,
                                                          std::vector<uint8_t>& payload);
    [[nodiscard]] std::optional<PacketHeader> next_packet_of(Connection& connection, uint32_t room,
                                                             std::vector<uint8_t>& payload);
    void wake_backends();

    // vsock_packets.cpp: what a TX packet means.
    void handle_packet(const PacketHeader& header, std::span<const uint8_t> payload);
    void handle_request(const PacketHeader& header);
    void handle_for_stream(Connection& connection, const PacketHeader& header,
                           std::span<const uint8_t> payload);
    void handle_shutdown(Connection& connection, uint32_t flags);
    void handle_data(Connection& connection, std::span<const uint8_t> payload);
    void reply_reset(const PacketHeader& header);
    void reset_stream(Connection& connection, bool tell_backend);
    void close_stream(Connection& connection);
    [[nodiscard]] PacketHeader header_for(Connection& connection, Op op);
    void note_consumed(Connection& connection);

    [[nodiscard]] uint32_t capacity_of(const Connection& connection) const;
    [[nodiscard]] Connection* find(ConnectionId id);
    void erase(const Connection& connection);

    VsockOptions m_options;
    std::unique_ptr<VsockBackend> m_backend;
    boost::asio::io_context& m_events;

    mutable std::mutex m_mutex;  // guards everything below
    std::optional<virtio::Queue> m_rx;
    std::optional<virtio::Queue> m_tx;
    virtio::Interrupt* m_interrupt = nullptr;
    std::optional<virtio::DescriptorChain> m_rx_chain;  // popped, not yet filled
    std::map<Key, Connection> m_connections;
    std::unordered_map<ConnectionId, Key> m_keys;
    std::deque<PacketHeader> m_replies;  // RSTs for packets without a stream
    Key m_cursor{0, 0};                  // round-robin position over streams
    ConnectionId m_next_id = 1;
    uint32_t m_next_host_port;
    std::vector<uint8_t> m_scratch;  // payload of the packet being handled
    VsockStats m_stats;
};

}  // namespace pv::vmm::vsock
