#pragma once

// virtio-vsock packets (virtio 1.2 §5.10.6): the 44-byte little-endian
// header, reading a guest's TX chain into a header and payload, and writing
// a packet into a guest's RX chain. Every field of a TX packet is chosen by
// a hostile guest; parse_packet() only checks that the bytes are there, the
// device checks what they mean.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/queue.hpp"

namespace pv::vmm::vsock {

// §5.10.4: the host's CID; CIDs 0..2 are reserved, so a guest CID is >= 3.
inline constexpr uint64_t kHostCid = 2;
inline constexpr uint64_t kFirstGuestCid = 3;

// §5.10.6: socket types, operations and shutdown flags.
inline constexpr uint16_t kTypeStream = 1;
enum class Op : uint16_t {
    Invalid = 0,
    Request = 1,
    Response = 2,
    Reset = 3,
    Shutdown = 4,
    ReadWrite = 5,
    CreditUpdate = 6,
    CreditRequest = 7,
};
inline constexpr uint32_t kShutdownReceive = 1;
inline constexpr uint32_t kShutdownSend = 2;

// §5.10.3: stream sockets are supported.
inline constexpr uint64_t kFeatureStream = uint64_t{1} << 0;

// Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE: no packet carries more payload.
inline constexpr uint32_t kMaxPayload = 64 * 1024;

// §5.10.6: struct virtio_vsock_hdr, packed, all fields little-endian.
struct __attribute__((packed)) PacketHeader {
    uint64_t src_cid = 0;
    uint64_t dst_cid = 0;
    uint32_t src_port = 0;
    uint32_t dst_port = 0;
    uint32_t len = 0;
    uint16_t type = 0;
    uint16_t op = 0;
    uint32_t flags = 0;
    uint32_t buf_alloc = 0;
    uint32_t fwd_cnt = 0;
};
static_assert(sizeof(PacketHeader) == 44);

enum class PacketFault {
    WritableBuffer,    // a TX chain holds a device-writable buffer
    ShortHeader,       // fewer than 44 readable bytes
    PayloadTooLarge,   // len > kMaxPayload
    PayloadTruncated,  // len larger than the bytes after the header
    Unreadable,        // a buffer could not be read (never after Queue::pop)
};

[[nodiscard]] const char* fault_name(PacketFault fault);

// Reads CHAIN (device-readable buffers only) into HEADER and PAYLOAD (the
// header's len bytes that follow it). PAYLOAD is reused to avoid allocations.
[[nodiscard]] tl::expected<PacketHeader, PacketFault> parse_packet(
    const virtio::DescriptorChain& chain, const GuestMemory& memory, std::vector<uint8_t>& payload);

// Room for payload in an RX chain: its device-writable bytes after the
// header, at most kMaxPayload; nothing when not even a header fits or the
// chain holds a device-readable buffer (§5.10.6.1: RX buffers are
// device-to-driver only).
[[nodiscard]] std::optional<uint32_t> payload_room(const virtio::DescriptorChain& chain);

// Writes HEADER and PAYLOAD (PAYLOAD.size() <= payload_room(CHAIN)) into the
// device-writable buffers of CHAIN; returns the bytes written.
[[nodiscard]] Result<uint32_t> write_packet(const virtio::DescriptorChain& chain,
                                            const GuestMemory& memory, const PacketHeader& header,
                                            std::span<const uint8_t> payload);

}  // namespace pv::vmm::vsock
