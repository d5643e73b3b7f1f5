#include "vmm/devices/block/block_request.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "vmm/devices/block/block.hpp"

namespace pv::vmm {
namespace {

using virtio::Buffer;

struct Outcome {
    uint8_t status;
    uint32_t written = 0;  // bytes written into data buffers
};

constexpr Outcome kIoError{kBlockStatusIoError};
constexpr Outcome kUnsupported{kBlockStatusUnsupported};

bool all_buffers(std::span<const Buffer> data, bool device_writable) {
    return std::all_of(data.begin(), data.end(), [&](const Buffer& buffer) {
        return buffer.device_writable == device_writable;
    });
}

uint64_t total_length(std::span<const Buffer> data) {
    uint64_t total = 0;
    for (const Buffer& buffer : data)
        total += buffer.length;  // at most 32768 buffers of < 4 GiB: no overflow
    return total;
}

// The byte offset of [SECTOR, SECTOR + LENGTH bytes) if the range lies
// inside the device; the guest picks both numbers, so every step is checked.
std::optional<uint64_t> checked_range(const img::BlockDevice& backend, uint64_t sector,
                                      uint64_t length) {
    uint64_t offset = 0;
    uint64_t end = 0;
    if (__builtin_mul_overflow(sector, kSectorSize, &offset) ||
        __builtin_add_overflow(offset, length, &end))
        return std::nullopt;
    const uint64_t capacity = backend.size() / kSectorSize * kSectorSize;
    if (end > capacity)
        return std::nullopt;
    return offset;
}

// IN and OUT (§5.2.6.1): data length a multiple of the sector size, every
// buffer in the direction the request type implies.
Outcome transfer(img::BlockDevice& backend, const BlockRequestHeader& header,
                 std::span<const Buffer> data, const GuestMemory& memory, bool is_read) {
    const uint64_t length = total_length(data);
    if (!all_buffers(data, is_read) || length % kSectorSize != 0)
        return kIoError;
    auto offset = checked_range(backend, header.sector, length);
    if (!offset)
        return kIoError;
    for (const Buffer& buffer : data) {
        auto bytes = memory.slice(buffer.address, buffer.length);
        if (!bytes)
            return kIoError;
        auto result = is_read ? backend.read_at(std::as_writable_bytes(*bytes), *offset)
                              : backend.write_at(std::as_bytes(*bytes), *offset);
        if (!result)
            return kIoError;
        *offset += buffer.length;
    }
    return {kBlockStatusOk, is_read ? static_cast<uint32_t>(length) : 0};
}

// GET_ID (§5.2.6): up to 20 bytes of identifier, NUL-padded, not terminated
// when it uses all 20.
Outcome get_id(std::string_view id, std::span<const Buffer> data, const GuestMemory& memory) {
    if (!all_buffers(data, true))
        return kIoError;
    std::array<uint8_t, kBlockIdLength> answer{};
    std::memcpy(answer.data(), id.data(), std::min(id.size(), answer.size()));
    uint32_t written = 0;
    for (const Buffer& buffer : data) {
        const uint32_t count = std::min<uint32_t>(buffer.length, answer.size() - written);
        if (!memory.write_bytes(buffer.address, std::span(answer).subspan(written, count)))
            return kIoError;
        written += count;
    }
    return {kBlockStatusOk, written};
}

// DISCARD and WRITE_ZEROES (§5.2.6.2): a list of 16-byte segments.
Outcome erase(img::BlockDevice& backend, const BlockRequestLimits& limits, uint32_t type,
              std::span<const Buffer> data, const GuestMemory& memory) {
    const uint64_t length = total_length(data);
    if (!all_buffers(data, false) || length == 0 || length % sizeof(BlockSegment) != 0 ||
        length / sizeof(BlockSegment) > limits.max_segments)
        return kIoError;
    std::vector<uint8_t> bytes(length);
    uint64_t position = 0;
    for (const Buffer& buffer : data) {
        if (!memory.read_bytes(buffer.address, std::span(bytes).subspan(position, buffer.length)))
            return kIoError;
        position += buffer.length;
    }
    // §5.2.6.2: DISCARD with the unmap flag, or any unknown flag, is UNSUPP.
    const uint32_t allowed_flags = type == kBlockRequestWriteZeroes ? 1 : 0;
    for (position = 0; position < length; position += sizeof(BlockSegment)) {
        BlockSegment segment;
        std::memcpy(&segment, bytes.data() + position, sizeof(segment));
        if (segment.flags & ~allowed_flags)
            return kUnsupported;
        const uint64_t segment_bytes = uint64_t{segment.sectors} * kSectorSize;
        auto offset = checked_range(backend, segment.sector, segment_bytes);
        if (!offset || segment.sectors > limits.max_segment_sectors)
            return kIoError;
        auto result = type == kBlockRequestDiscard ? backend.discard(*offset, segment_bytes)
                                                   : backend.write_zeroes(*offset, segment_bytes);
        if (!result)
            return kIoError;
    }
    return {kBlockStatusOk};
}

Outcome dispatch(img::BlockDevice& backend, const BlockRequestLimits& limits,
                 const BlockRequestHeader& header, std::span<const Buffer> data,
                 const GuestMemory& memory) {
    switch (header.type) {
        case kBlockRequestIn:
            return transfer(backend, header, data, memory, true);
        case kBlockRequestOut:
            if (limits.read_only)
                return kIoError;  // §5.2.6.2: writes to a read-only device fail
            return transfer(backend, header, data, memory, false);
        case kBlockRequestFlush:
            return backend.flush() ? Outcome{kBlockStatusOk} : kIoError;
        case kBlockRequestGetId:
            return get_id(limits.id, data, memory);
        case kBlockRequestDiscard:
        case kBlockRequestWriteZeroes:
            if (limits.read_only)
                return kIoError;
            return erase(backend, limits, header.type, data, memory);
        default:
            return kUnsupported;
    }
}

}  // namespace

uint32_t execute_block_request(img::BlockDevice& backend, const BlockRequestLimits& limits,
                               const virtio::DescriptorChain& chain, const GuestMemory& memory) {
    const std::span<const Buffer> buffers = chain.buffers;
    // §5.2.6: header first, status byte last, in buffers of their own.
    if (buffers.size() < 2 || !buffers.back().device_writable || buffers.back().length < 1)
        return 0;
    const Buffer& status = buffers.back();
    Outcome outcome = kIoError;
    const Buffer& head = buffers.front();
    if (!head.device_writable && head.length >= sizeof(BlockRequestHeader)) {
        if (auto header = memory.read<BlockRequestHeader>(head.address))
            outcome =
                dispatch(backend, limits, *header, buffers.subspan(1, buffers.size() - 2), memory);
    }
    // The status byte is written last, after all data (§5.2.6).
    if (!memory.write<uint8_t>(status.address, outcome.status))
        return 0;
    return outcome.written + 1;
}

}  // namespace pv::vmm
