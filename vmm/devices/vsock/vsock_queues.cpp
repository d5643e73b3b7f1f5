// Moving packets through the rings: TX chains in, RX chains out
// (virtio 1.2 §5.10.6.1, §5.10.6.2).

#include "vmm/devices/vsock/vsock.hpp"
#include "vmm/virtio/serve_queue.hpp"

namespace pv::vmm::vsock {

void VirtioVsock::process() {
    if (!m_rx || !m_tx)
        return;
    // TX stops while the RSTs owed to the guest fill their queue; each RX
    // pass may drain it, so alternate until neither side moves.
    for (;;) {
        process_tx();
        const bool tx_blocked = m_replies.size() >= m_options.max_replies;
        process_rx();
        if (!tx_blocked || m_replies.size() >= m_options.max_replies)
            break;
    }
    wake_backends();
}

void VirtioVsock::process_tx() {
    // TX stops while the RSTs owed to the guest fill their queue.
    const auto room_for_replies = [this] { return m_replies.size() < m_options.max_replies; };
    // The device writes nothing into a TX chain: its used length is 0.
    const auto serve = [this](const virtio::DescriptorChain* chain) -> uint32_t {
        if (chain) {
            if (auto header = parse_packet(*chain, m_tx->memory(), m_scratch)) {
                handle_packet(*header, m_scratch);
                return 0;
            }
        }
        // A chain the queue refused, or a packet we cannot read.
        ++m_stats.dropped_packets;
        return 0;
    };
    virtio::serve_queue(*m_tx, *m_interrupt, room_for_replies, serve);
}

void VirtioVsock::process_rx() {
    bool used = false;
    std::vector<uint8_t> payload;
    while (m_rx) {
        if (!m_rx_chain) {
            auto next = m_rx->pop();
            if (!next && next.error().fatal) {
                m_interrupt->signal_device_error();
                break;
            }
            if (next && !*next)
                break;
            if (!next) {
                if (next.error().head < m_rx->layout().size && m_rx->add_used(next.error().head, 0))
                    used = true;
                continue;
            }
            m_rx_chain = std::move(**next);
        }
        const std::optional<uint32_t> room = payload_room(*m_rx_chain);
        std::optional<PacketHeader> header;
        if (room) {
            header = next_packet(*room, payload);
            if (!header)
                break;  // keep the chain for the next packet
        }
        uint32_t written = 0;
        if (header) {
            // The chain was checked when popped; a failure here means the
            // packet is lost, which only the guest's own layout can cause.
            written = write_packet(*m_rx_chain, m_rx->memory(), *header, payload).value_or(0);
        }
        const uint16_t head = m_rx_chain->head;
        m_rx_chain.reset();
        if (!m_rx->add_used(head, written)) {
            m_interrupt->signal_device_error();
            break;
        }
        used = true;
    }
    if (used)
        m_interrupt->signal_used_buffer();
}

std::optional<PacketHeader> VirtioVsock::next_packet(uint32_t room, std::vector<uint8_t>& payload) {
    payload.clear();
    if (!m_replies.empty()) {
        const PacketHeader header = m_replies.front();
        m_replies.pop_front();
        ++m_stats.resets_sent;
        return header;
    }
    if (m_connections.empty())
        return std::nullopt;
    // Round robin from the stream after the last one served, so one busy
    // stream cannot starve the others.
    auto it = m_connections.upper_bound(m_cursor);
    for (size_t visited = 0; visited < m_connections.size(); ++visited, ++it) {
        if (it == m_connections.end())
            it = m_connections.begin();
        Connection& connection = it->second;
        auto header = next_packet_of(connection, room, payload);
        if (!header)
            continue;
        m_cursor = it->first;
        if (static_cast<Op>(header->op) == Op::Reset) {
            ++m_stats.resets_sent;
            erase(connection);
        }
        return header;
    }
    return std::nullopt;
}

std::optional<PacketHeader> VirtioVsock::next_packet_of(Connection& connection, uint32_t room,
                                                        std::vector<uint8_t>& payload) {
    switch (connection.state) {
        case StreamState::Closing:
            if (connection.drain_before_reset && connection.forwarded != connection.received)
                return std::nullopt;  // consumed() or host_reset() moves it on
            return header_for(connection, Op::Reset);
        case StreamState::AwaitingHost:
            return std::nullopt;
        case StreamState::AwaitingGuest:
            if (!connection.owe_request)
                return std::nullopt;
            connection.owe_request = false;
            return header_for(connection, Op::Request);
        case StreamState::Established:
            break;
    }
    if (connection.owe_response) {
        connection.owe_response = false;
        return header_for(connection, Op::Response);
    }
    // §5.10.6.3: never more than the guest's credit.
    const size_t count =
        std::min<size_t>({connection.pending.size(), connection.peer_credit(), room});
    if (count > 0) {
        auto bytes = connection.pending.front(count);
        payload.assign(bytes.begin(), bytes.end());
        connection.pending.drop(count);
        connection.sent += static_cast<uint32_t>(count);
        PacketHeader header = header_for(connection, Op::ReadWrite);
        header.len = static_cast<uint32_t>(count);
        return header;
    }
    if (connection.owe_credit_update)
        return header_for(connection, Op::CreditUpdate);
    if (connection.host_finished && connection.pending.empty() && !connection.shutdown_sent) {
        connection.shutdown_sent = true;
        PacketHeader header = header_for(connection, Op::Shutdown);
        header.flags = kShutdownSend;
        // Both directions are over: a RST closes the stream (Linux waits for it).
        if (connection.guest_finished)
            close_stream(connection);
        return header;
    }
    return std::nullopt;
}

void VirtioVsock::wake_backends() {
    for (auto& [key, connection] : m_connections) {
        if (connection.backend_waiting && connection.state == StreamState::Established &&
            capacity_of(connection) > 0) {
            connection.backend_waiting = false;
            m_backend->writable(connection.id);
        }
    }
}

}  // namespace pv::vmm::vsock
