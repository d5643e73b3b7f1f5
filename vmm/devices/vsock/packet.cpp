#include "vmm/devices/vsock/packet.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace pv::vmm::vsock {
namespace {

// Copies OUT.size() bytes starting at byte SKIP of the chain's buffers;
// false when a buffer cannot be read.
bool gather(const virtio::DescriptorChain& chain, const GuestMemory& memory, uint64_t skip,
            std::span<uint8_t> out) {
    size_t done = 0;
    for (const virtio::Buffer& buffer : chain.buffers) {
        if (done == out.size())
            break;
        if (skip >= buffer.length) {
            skip -= buffer.length;
            continue;
        }
        const uint64_t count = std::min<uint64_t>(buffer.length - skip, out.size() - done);
        if (!memory.read_bytes(buffer.address + skip, out.subspan(done, count)))
            return false;
        done += count;
        skip = 0;
    }
    return done == out.size();
}

}  // namespace

const char* fault_name(PacketFault fault) {
    switch (fault) {
        case PacketFault::WritableBuffer:
            return "device-writable buffer in a TX chain";
        case PacketFault::ShortHeader:
            return "header shorter than 44 bytes";
        case PacketFault::PayloadTooLarge:
            return "payload larger than 64 KiB";
        case PacketFault::PayloadTruncated:
            return "payload shorter than len";
        case PacketFault::Unreadable:
            return "buffer unreadable";
    }
    return "unknown";
}

tl::expected<PacketHeader, PacketFault> parse_packet(const virtio::DescriptorChain& chain,
                                                     const GuestMemory& memory,
                                                     std::vector<uint8_t>& payload) {
    uint64_t readable = 0;
    for (const virtio::Buffer& buffer : chain.buffers) {
        // §5.10.6.2: TX buffers are driver-to-device only.
        if (buffer.device_writable)
            return tl::unexpected(PacketFault::WritableBuffer);
        readable += buffer.length;  // at most 32768 buffers of < 4 GiB: no overflow
    }
    PacketHeader header;
    if (readable < sizeof(header))
        return tl::unexpected(PacketFault::ShortHeader);
    if (!gather(chain, memory, 0, {reinterpret_cast<uint8_t*>(&header), sizeof(header)}))
        return tl::unexpected(PacketFault::Unreadable);
    if (header.len > kMaxPayload)
        return tl::unexpected(PacketFault::PayloadTooLarge);
    if (header.len > readable - sizeof(header))
        return tl::unexpected(PacketFault::PayloadTruncated);
    payload.resize(header.len);
    if (!gather(chain, memory, sizeof(header), payload))
        return tl::unexpected(PacketFault::Unreadable);
    return header;
}

std::optional<uint32_t> payload_room(const virtio::DescriptorChain& chain) {
    uint64_t writable = 0;
    for (const virtio::Buffer& buffer : chain.buffers) {
        if (!buffer.device_writable)
            return std::nullopt;
        writable += buffer.length;
    }
    if (writable < sizeof(PacketHeader))
        return std::nullopt;
    return static_cast<uint32_t>(std::min<uint64_t>(writable - sizeof(PacketHeader), kMaxPayload));
}

Result<uint32_t> write_packet(const virtio::DescriptorChain& chain, const GuestMemory& memory,
                              const PacketHeader& header, std::span<const uint8_t> payload) {
    std::array<uint8_t, sizeof(PacketHeader)> header_bytes;
    std::memcpy(header_bytes.data(), &header, sizeof(header));
    std::span<const uint8_t> pieces[2] = {header_bytes, payload};
    // An empty payload is no piece at all, so a header that exactly fills
    // the chain is a complete packet.
    const size_t piece_count = payload.empty() ? 1 : 2;
    size_t piece = 0;
    size_t piece_offset = 0;
    uint32_t written = 0;
    for (const virtio::Buffer& buffer : chain.buffers) {
        uint32_t buffer_offset = 0;
        while (piece < piece_count && buffer_offset < buffer.length) {
            const size_t count = std::min<size_t>(buffer.length - buffer_offset,
                                                  pieces[piece].size() - piece_offset);
            PV_TRY(memory.write_bytes(buffer.address + buffer_offset,
                                      pieces[piece].subspan(piece_offset, count)));
            buffer_offset += static_cast<uint32_t>(count);
            piece_offset += count;
            written += static_cast<uint32_t>(count);
            if (piece_offset == pieces[piece].size()) {
                ++piece;
                piece_offset = 0;
            }
        }
        if (piece == piece_count)
            break;
    }
    if (piece < piece_count)
        return fail(make_error("write vsock packet", "RX chain too small"));
    return written;
}

}  // namespace pv::vmm::vsock
