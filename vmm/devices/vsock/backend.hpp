#pragma once

// The seam between the virtio-vsock device and whatever carries its streams
// on the host. The device speaks the virtio protocol
// (headers, credit, RST, shutdown) and turns it into the byte-stream verbs
// below; a backend (the hybrid Unix-socket one, or a fake in tests) moves
// the bytes. Both sides run on one thread, the VMM's event loop. Neither
// side calls the other back from inside a call it received: a backend
// answers later (from its own completion handlers), so the device can call
// it while holding its lock.

#include <cstdint>
#include <optional>
#include <span>

namespace pv::vmm::vsock {

// Names one stream for as long as the device knows it; never reused.
using ConnectionId = uint64_t;

enum class Answer { Accepted, Refused };

// What a backend may ask of the device.
class VsockHost {
  public:
    virtual ~VsockHost() = default;

    // The answer to VsockBackend::connect().
    virtual void connect_done(ConnectionId id, Answer answer) = 0;
    // A host client wants guest port GUEST_PORT. Returns the new stream and
    // the host-side port it uses, or nothing (device not active or at its
    // connection cap). The guest's answer arrives as guest_answered().
    struct Outgoing {
        ConnectionId id;
        uint32_t host_port;
    };
    [[nodiscard]] virtual std::optional<Outgoing> connect_guest(uint32_t guest_port) = 0;
    // How many bytes send() takes now: bounded by the guest's credit and by
    // the device's own per-stream buffer. When 0, the device calls
    // VsockBackend::writable() once room appears.
    [[nodiscard]] virtual uint32_t send_capacity(ConnectionId id) = 0;
    // Bytes for the guest, at most send_capacity() of them.
    virtual void send(ConnectionId id, std::span<const uint8_t> data) = 0;
    // The backend forwarded BYTES of what receive() gave it: credit for the guest.
    virtual void consumed(ConnectionId id, uint32_t bytes) = 0;
    // The host side will send no more (end of file).
    virtual void host_shutdown(ConnectionId id) = 0;
    // The host side is gone or failed: the guest gets a RST.
    virtual void host_reset(ConnectionId id) = 0;
};

// What the device asks of a backend.
class VsockBackend {
  public:
    virtual ~VsockBackend() = default;

    // Called once, before anything else; HOST outlives the backend's use of it.
    virtual void attach(VsockHost& host) = 0;
    // The guest connects to host port PORT; answer with VsockHost::connect_done().
    virtual void connect(ConnectionId id, uint32_t port) = 0;
    // The guest's answer to a VsockHost::connect_guest().
    virtual void guest_answered(ConnectionId id, Answer answer) = 0;
    // Bytes from the guest. Their total not yet consumed() stays within the
    // buffer the device advertises (VsockOptions::buffer_size).
    virtual void receive(ConnectionId id, std::span<const uint8_t> data) = 0;
    // The guest will send no more: pass that on after the buffered bytes.
    virtual void guest_shutdown(ConnectionId id) = 0;
    // The stream ends (RST, full shutdown or device reset): flush what
    // receive() gave, still reporting consumed() (after an orderly shutdown
    // the guest's RST waits for it) or host_reset() if that fails, then
    // close. The device makes no more calls for ID.
    virtual void close(ConnectionId id) = 0;
    // send_capacity(ID) was 0 and is not any more: resume reading.
    virtual void writable(ConnectionId id) = 0;
};

}  // namespace pv::vmm::vsock
