// What a TX packet from the guest means (virtio 1.2 §5.10.6). The header is
// the guest's; every field is checked before it changes a stream.

#include "vmm/devices/vsock/vsock.hpp"

namespace pv::vmm::vsock {

void VirtioVsock::handle_packet(const PacketHeader& header, std::span<const uint8_t> payload) {
    // §5.10.6.1: the source must be the guest itself. A spoofed source gets
    // no answer, so the guest cannot aim RSTs at anyone else.
    if (header.src_cid != m_options.guest_cid) {
        ++m_stats.dropped_packets;
        return;
    }
    const auto op = static_cast<Op>(header.op);
    auto it = m_connections.find(Key{header.src_port, header.dst_port});
    if (op == Op::Reset) {
        // Never answer a RST, or two peers could reset each other forever.
        if (it != m_connections.end() && header.dst_cid == kHostCid) {
            Connection& connection = it->second;
            if (connection.state == StreamState::AwaitingGuest)
                m_backend->guest_answered(connection.id, Answer::Refused);
            else if (connection.state != StreamState::Closing)
                m_backend->close(connection.id);
            erase(connection);
        }
        return;
    }
    // Only the host (CID 2) is reachable, and only with stream sockets.
    if (header.dst_cid != kHostCid || header.type != kTypeStream) {
        reply_reset(header);
        return;
    }
    if (op == Op::Request) {
        handle_request(header);
        return;
    }
    if (it == m_connections.end()) {
        reply_reset(header);  // §5.10.6.3: no socket at that address
        return;
    }
    if (it->second.state != StreamState::Closing)
        handle_for_stream(it->second, header, payload);
}

void VirtioVsock::handle_request(const PacketHeader& header) {
    auto it = m_connections.find(Key{header.src_port, header.dst_port});
    if (it != m_connections.end()) {
        // A second REQUEST on a live address: the guest lost track of it.
        if (it->second.state != StreamState::Closing)
            reset_stream(it->second, true);
        return;
    }
    if (header.len != 0 || m_connections.size() >= m_options.max_connections) {
        reply_reset(header);
        return;
    }
    Connection connection;
    connection.id = m_next_id++;
    connection.guest_port = header.src_port;
    connection.host_port = header.dst_port;
    connection.state = StreamState::AwaitingHost;
    connection.peer_buffer = header.buf_alloc;
    connection.peer_forwarded = header.fwd_cnt;
    const ConnectionId id = connection.id;
    m_keys.emplace(id, Key{header.src_port, header.dst_port});
    m_connections.emplace(Key{header.src_port, header.dst_port}, std::move(connection));
    m_backend->connect(id, header.dst_port);
}

void VirtioVsock::handle_for_stream(Connection& connection, const PacketHeader& header,
                                    std::span<const uint8_t> payload) {
    const auto op = static_cast<Op>(header.op);
    // Only RW carries payload (§5.10.6.3).
    if (op != Op::ReadWrite && header.len != 0) {
        reset_stream(connection, true);
        return;
    }
    // Every packet carries the sender's credit (§5.10.6.3).
    connection.peer_buffer = header.buf_alloc;
    connection.peer_forwarded = header.fwd_cnt;
    const bool established = connection.state == StreamState::Established;
    switch (op) {
        case Op::Response:
            if (connection.state != StreamState::AwaitingGuest || connection.owe_request) {
                reset_stream(connection, true);
                return;
            }
            connection.state = StreamState::Established;
            m_backend->guest_answered(connection.id, Answer::Accepted);
            return;
        case Op::Shutdown:
            if (!established)
                return reset_stream(connection, true);
            return handle_shutdown(connection, header.flags);
        case Op::ReadWrite:
            if (!established || connection.guest_finished)
                return reset_stream(connection, true);
            return handle_data(connection, payload);
        case Op::CreditUpdate:
            return;  // the new credit is recorded; process() wakes the backend
        case Op::CreditRequest:
            connection.owe_credit_update = true;
            return;
        default:
            return reset_stream(connection, true);
    }
}

void VirtioVsock::handle_shutdown(Connection& connection, uint32_t flags) {
    if (flags & kShutdownReceive) {
        // The guest reads no more: what waits for it is dropped and the
        // backend stops reading (send_capacity() is 0 from now on).
        connection.guest_stopped_reading = true;
        connection.pending.clear();
    }
    if ((flags & kShutdownSend) && !connection.guest_finished) {
        connection.guest_finished = true;
        m_backend->guest_shutdown(connection.id);
    }
    // Linux closes with SHUTDOWN(RECEIVE|SEND) and waits for our RST; a
    // stream whose both directions have ended is closed the same way.
    const bool host_done = connection.shutdown_sent || connection.guest_stopped_reading;
    if (connection.guest_finished && host_done)
        close_stream(connection);
}

void VirtioVsock::handle_data(Connection& connection, std::span<const uint8_t> payload) {
    // §5.10.6.3: the guest must not send more than our buf_alloc allows.
    if (payload.size() > connection.receive_room(m_options.buffer_size)) {
        reset_stream(connection, true);
        return;
    }
    connection.received += static_cast<uint32_t>(payload.size());
    if (!payload.empty())
        m_backend->receive(connection.id, payload);
}

void VirtioVsock::reply_reset(const PacketHeader& header) {
    PacketHeader reply;
    // Addressed from where the guest sent it, so the guest finds its socket.
    reply.src_cid = header.dst_cid;
    reply.dst_cid = header.src_cid;
    reply.src_port = header.dst_port;
    reply.dst_port = header.src_port;
    reply.type = kTypeStream;
    reply.op = static_cast<uint16_t>(Op::Reset);
    m_replies.push_back(reply);  // process_tx() keeps the queue within max_replies
}

void VirtioVsock::reset_stream(Connection& connection, bool tell_backend) {
    if (tell_backend && connection.state == StreamState::AwaitingGuest)
        m_backend->guest_answered(connection.id, Answer::Refused);
    else if (tell_backend)
        m_backend->close(connection.id);
    connection.state = StreamState::Closing;
    connection.pending.clear();
    connection.backend_waiting = false;
}

void VirtioVsock::close_stream(Connection& connection) {
    reset_stream(connection, true);
    connection.drain_before_reset = true;
}

PacketHeader VirtioVsock::header_for(Connection& connection, Op op) {
    PacketHeader header;
    header.src_cid = kHostCid;
    header.dst_cid = m_options.guest_cid;
    header.src_port = connection.host_port;
    header.dst_port = connection.guest_port;
    header.type = kTypeStream;
    header.op = static_cast<uint16_t>(op);
    header.buf_alloc = m_options.buffer_size;
    header.fwd_cnt = connection.forwarded;
    // Every packet tells the guest our credit, so no separate update is owed.
    connection.advertised_forwarded = connection.forwarded;
    connection.owe_credit_update = false;
    return header;
}

void VirtioVsock::note_consumed(Connection& connection) {
    // Tell the guest about freed buffer space once a quarter of the buffer
    // was freed, or as soon as the guest believes it has less than that
    // left, so neither side waits on a credit nobody announces.
    const uint32_t threshold = m_options.buffer_size / 4;
    const uint32_t unannounced = connection.forwarded - connection.advertised_forwarded;
    if (unannounced == 0)
        return;
    const uint32_t believed_held = connection.received - connection.advertised_forwarded;
    const uint32_t believed_room =
        believed_held > m_options.buffer_size ? 0 : m_options.buffer_size - believed_held;
    if (unannounced >= threshold || believed_room < threshold)
        connection.owe_credit_update = true;
}

}  // namespace pv::vmm::vsock
