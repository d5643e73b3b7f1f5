#include "vmm/devices/vsock/vsock.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <cstring>

namespace pv::vmm::vsock {

Result<std::shared_ptr<VirtioVsock>> VirtioVsock::create(VsockOptions options,
                                                         std::unique_ptr<VsockBackend> backend,
                                                         boost::asio::io_context& events) {
    // §5.10.4: CIDs 0, 1 and 2 are reserved; Linux keeps CIDs in 32 bits
    // and treats U32_MAX as VMADDR_CID_ANY.
    if (options.guest_cid < kFirstGuestCid || options.guest_cid >= UINT32_MAX)
        return fail(
            make_error("create virtio-vsock", "guest CID must be between 3 and 4294967294"));
    if (options.max_connections == 0 || options.max_replies == 0 || options.buffer_size == 0 ||
        options.pending_limit == 0)
        return fail(make_error("create virtio-vsock", "limits must not be zero"));
    if (!backend)
        return fail(make_error("create virtio-vsock", "no backend"));
    auto device = std::make_shared<VirtioVsock>(options, std::move(backend), events);
    device->m_backend->attach(*device);
    return device;
}

VirtioVsock::VirtioVsock(VsockOptions options, std::unique_ptr<VsockBackend> backend,
                         boost::asio::io_context& events)
    : m_options(options),
      m_backend(std::move(backend)),
      m_events(events),
      m_next_host_port(options.first_host_port) {}

std::vector<uint16_t> VirtioVsock::queue_max_sizes() const {
    return {m_options.queue_size, m_options.queue_size, m_options.queue_size};
}

void VirtioVsock::read_config(uint64_t offset, std::span<uint8_t> data) const {
    // §5.10.4: struct virtio_vsock_config { le64 guest_cid; }.
    std::fill(data.begin(), data.end(), 0);
    const uint64_t cid = m_options.guest_cid;
    if (offset >= sizeof(cid))
        return;
    const size_t count = std::min<uint64_t>(data.size(), sizeof(cid) - offset);
    std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&cid) + offset, count);
}

void VirtioVsock::write_config(uint64_t, std::span<const uint8_t>) {
    // §5.10.4: the configuration space is read-only for the driver.
}

Result<void> VirtioVsock::activate(uint64_t, std::vector<virtio::Queue> queues,
                                   virtio::Interrupt& interrupt) {
    if (queues.size() != 3)
        return fail(make_error("activate virtio-vsock", "expected three queues"));
    {
        std::lock_guard lock(m_mutex);
        m_rx.emplace(std::move(queues[kQueueRx]));
        m_tx.emplace(std::move(queues[kQueueTx]));
        m_interrupt = &interrupt;
    }
    // The driver may have posted buffers before DRIVER_OK.
    queue_notify(kQueueTx);
    return {};
}

void VirtioVsock::reset() {
    std::vector<ConnectionId> ids;
    {
        std::lock_guard lock(m_mutex);
        m_rx.reset();
        m_tx.reset();
        m_rx_chain.reset();
        m_interrupt = nullptr;
        for (const auto& [key, connection] : m_connections)
            ids.push_back(connection.id);
        m_connections.clear();
        m_keys.clear();
        m_replies.clear();
    }
    // The backend lives on the event loop; reset() may come from a vCPU.
    boost::asio::post(m_events, [weak = weak_from_this(), ids = std::move(ids)] {
        if (auto self = weak.lock())
            for (ConnectionId id : ids)
                self->m_backend->close(id);
    });
}

void VirtioVsock::queue_notify(uint16_t queue) {
    if (queue == kQueueEvent)
        return;
    // Inline when already on the event loop (an ioeventfd handler), posted
    // from a vCPU thread: the backend's sockets belong to the loop.
    boost::asio::dispatch(m_events, [weak = weak_from_this()] {
        if (auto self = weak.lock()) {
            std::lock_guard lock(self->m_mutex);
            self->process();
        }
    });
}

uint32_t VirtioVsock::capacity_of(const Connection& connection) const {
    // Bytes accepted but not yet in the guest's rings already use credit.
    const uint64_t pending = connection.pending.size();
    const uint64_t credit = connection.peer_credit();
    const uint64_t by_credit = credit > pending ? credit - pending : 0;
    const uint64_t by_buffer =
        m_options.pending_limit > pending ? m_options.pending_limit - pending : 0;
    return static_cast<uint32_t>(std::min(by_credit, by_buffer));
}

Connection* VirtioVsock::find(ConnectionId id) {
    auto key = m_keys.find(id);
    if (key == m_keys.end())
        return nullptr;
    return &m_connections.at(key->second);
}

void VirtioVsock::erase(const Connection& connection) {
    m_keys.erase(connection.id);
    m_connections.erase(Key{connection.guest_port, connection.host_port});
}

size_t VirtioVsock::connection_count() const {
    std::lock_guard lock(m_mutex);
    return m_connections.size();
}

VsockStats VirtioVsock::stats() const {
    std::lock_guard lock(m_mutex);
    return m_stats;
}

// VsockHost: each call changes one stream, then moves whatever became
// ready into the rings.

void VirtioVsock::connect_done(ConnectionId id, Answer answer) {
    std::lock_guard lock(m_mutex);
    Connection* connection = find(id);
    if (!connection || connection->state != StreamState::AwaitingHost)
        return;
    if (answer == Answer::Accepted) {
        connection->state = StreamState::Established;
        connection->owe_response = true;
    } else {
        reset_stream(*connection, false);
    }
    process();
}

std::optional<VsockHost::Outgoing> VirtioVsock::connect_guest(uint32_t guest_port) {
    std::lock_guard lock(m_mutex);
    if (!m_rx || m_connections.size() >= m_options.max_connections)
        return std::nullopt;
    // A local port not in use towards GUEST_PORT; the cap keeps this short.
    uint32_t host_port = m_next_host_port;
    while (m_connections.contains(Key{guest_port, host_port}))
        host_port = host_port == UINT32_MAX - 1 ? m_options.first_host_port : host_port + 1;
    m_next_host_port = host_port == UINT32_MAX - 1 ? m_options.first_host_port : host_port + 1;

    Connection connection;
    connection.id = m_next_id++;
    connection.guest_port = guest_port;
    connection.host_port = host_port;
    connection.state = StreamState::AwaitingGuest;
    connection.owe_request = true;
    m_keys.emplace(connection.id, Key{guest_port, host_port});
    const Outgoing outgoing{connection.id, host_port};
    m_connections.emplace(Key{guest_port, host_port}, std::move(connection));
    process();
    return outgoing;
}

uint32_t VirtioVsock::send_capacity(ConnectionId id) {
    std::lock_guard lock(m_mutex);
    Connection* connection = find(id);
    if (!connection || connection->state != StreamState::Established ||
        connection->guest_stopped_reading || connection->host_finished)
        return 0;
    const uint32_t capacity = capacity_of(*connection);
    if (capacity == 0)
        connection->backend_waiting = true;
    return capacity;
}

void VirtioVsock::send(ConnectionId id, std::span<const uint8_t> data) {
    std::lock_guard lock(m_mutex);
    Connection* connection = find(id);
    if (!connection || connection->state != StreamState::Established ||
        connection->guest_stopped_reading || connection->host_finished)
        return;
    // The backend asked send_capacity() first; the limit holds regardless.
    const size_t room = m_options.pending_limit -
                        std::min<size_t>(connection->pending.size(), m_options.pending_limit);
    connection->pending.append(data.first(std::min(data.size(), room)));
    process();
}

void VirtioVsock::consumed(ConnectionId id, uint32_t bytes) {
    std::lock_guard lock(m_mutex);
    Connection* connection = find(id);
    if (!connection)
        return;
    // Never more than was received: fwd_cnt must not run ahead of rx_cnt.
    connection->forwarded += std::min(bytes, connection->received - connection->forwarded);
    if (connection->state != StreamState::Closing)
        note_consumed(*connection);
    process();
}

void VirtioVsock::host_shutdown(ConnectionId id) {
    std::lock_guard lock(m_mutex);
    Connection* connection = find(id);
    if (!connection || connection->state != StreamState::Established)
        return;
    connection->host_finished = true;
    process();
}

void VirtioVsock::host_reset(ConnectionId id) {
    std::lock_guard lock(m_mutex);
    Connection* connection = find(id);
    if (!connection)
        return;
    if (connection->state == StreamState::Closing) {
        // The backend could not forward the rest: stop waiting for it.
        connection->drain_before_reset = false;
        process();
        return;
    }
    if (connection->state == StreamState::AwaitingGuest) {
        // Nothing was said to the guest yet unless the REQUEST went out.
        if (connection->owe_request) {
            erase(*connection);
            return;
        }
    }
    reset_stream(*connection, false);
    process();
}

}  // namespace pv::vmm::vsock
