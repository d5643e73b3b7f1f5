#pragma once

// One vsock stream as the device tracks it: its addresses, its state and
// the credit counters of virtio 1.2 §5.10.6.3. All counters are u32 and wrap,
// as the spec's are; differences are taken modulo 2^32.

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "vmm/devices/vsock/backend.hpp"

namespace pv::vmm::vsock {

enum class StreamState {
    AwaitingHost,   // the guest sent REQUEST; the backend is connecting
    AwaitingGuest,  // we sent (or will send) REQUEST; the guest has not answered
    Established,
    Closing,  // a RST is owed to the guest; the entry goes once it is sent
};

// Bytes from the host waiting for RX buffers and guest credit. Bounded by
// the device's pending limit, so a plain vector with a read offset will do.
class PendingBytes {
  public:
    [[nodiscard]] size_t size() const { return m_bytes.size() - m_offset; }
    [[nodiscard]] bool empty() const { return size() == 0; }
    [[nodiscard]] std::span<const uint8_t> front(size_t count) const {
        return std::span<const uint8_t>(m_bytes).subspan(m_offset, std::min(count, size()));
    }
    void append(std::span<const uint8_t> data) {
        if (m_offset > 0 && m_offset >= m_bytes.size() / 2) {
            m_bytes.erase(m_bytes.begin(), m_bytes.begin() + static_cast<ptrdiff_t>(m_offset));
            m_offset = 0;
        }
        m_bytes.insert(m_bytes.end(), data.begin(), data.end());
    }
    void drop(size_t count) {
        m_offset += std::min(count, size());
        if (m_offset == m_bytes.size())
            clear();
    }
    void clear() {
        m_bytes.clear();
        m_offset = 0;
    }

  private:
    std::vector<uint8_t> m_bytes;
    size_t m_offset = 0;
};

struct Connection {
    ConnectionId id = 0;
    uint32_t guest_port = 0;
    uint32_t host_port = 0;
    StreamState state = StreamState::AwaitingHost;

    // Guest → host: payload bytes received, of those forwarded by the
    // backend (our fwd_cnt), and the fwd_cnt the guest last heard.
    uint32_t received = 0;
    uint32_t forwarded = 0;
    uint32_t advertised_forwarded = 0;

    // Host → guest: the guest's buf_alloc and fwd_cnt, and what we sent (tx_cnt).
    uint32_t peer_buffer = 0;
    uint32_t peer_forwarded = 0;
    uint32_t sent = 0;
    PendingBytes pending;

    // Packets owed to the guest, sent when an RX buffer is there.
    bool owe_request = false;
    bool owe_response = false;
    bool owe_credit_update = false;
    bool host_finished = false;  // end of file from the host: SHUTDOWN once pending is out
    bool shutdown_sent = false;
    bool guest_finished = false;         // the guest sent SHUTDOWN with SEND
    bool guest_stopped_reading = false;  // ... with RECEIVE
    bool backend_waiting = false;        // send_capacity() said 0; wake the backend on room
    // An orderly close: the RST waits until the backend has forwarded all
    // the guest sent, so a guest that waits for it knows its data is out.
    bool drain_before_reset = false;

    // §5.10.6.3: what the guest can still take, peer_buf_alloc - (tx_cnt - peer_fwd_cnt).
    // A guest whose fwd_cnt runs ahead of what we sent gets no credit from it.
    [[nodiscard]] uint32_t peer_credit() const {
        const uint32_t in_flight = sent - peer_forwarded;
        return in_flight > peer_buffer ? 0 : peer_buffer - in_flight;
    }
    // Room in our buffer for the guest: buf_alloc - (rx_cnt - fwd_cnt).
    [[nodiscard]] uint32_t receive_room(uint32_t buffer_size) const {
        const uint32_t held = received - forwarded;
        return held > buffer_size ? 0 : buffer_size - held;
    }
};

}  // namespace pv::vmm::vsock
