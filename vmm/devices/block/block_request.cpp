#include "vmm/devices/block/block_request.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <span>

#include <boost/container/small_vector.hpp>

#include "vmm/devices/block/block.hpp"

namespace pv::vmm {
namespace {

using virtio::Buffer;
using Done = tl::expected<uint32_t, BlockFault>;

// Data buffers a request carries without allocating.
constexpr size_t kInlineBuffers = 16;

tl::unexpected<BlockFault> fault(BlockFault which) {
    return tl::unexpected(which);
}

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

template <class Byte>
using Spans = boost::container::small_vector<std::span<Byte>, kInlineBuffers>;

// The guest memory of DATA, buffer by buffer, into SPANS.
template <class Byte>
bool guest_spans(std::span<const Buffer> data, const GuestMemory& memory, Spans<Byte>& spans) {
    for (const Buffer& buffer : data) {
        auto bytes = memory.slice(buffer.address, buffer.length);
        if (!bytes)
            return false;
        spans.push_back(std::as_writable_bytes(*bytes));
    }
    return true;
}

// IN and OUT (§5.2.6.1): data length a multiple of the sector size, every
// buffer in the direction the request type implies.
Done transfer(img::BlockDevice& backend, const BlockRequest& request, const GuestMemory& memory,
              bool is_read) {
    const uint64_t length = total_length(request.data);
    if (!all_buffers(request.data, is_read))
        return fault(BlockFault::WrongDirection);
    if (length % kSectorSize != 0)
        return fault(BlockFault::PartialSector);
    auto offset = checked_range(backend, request.header.sector, length);
    if (!offset)
        return fault(BlockFault::OutOfRange);
    // One backend request for the whole chain (preadv for a raw file).
    if (is_read) {
        Spans<std::byte> spans;
        if (!guest_spans(request.data, memory, spans))
            return fault(BlockFault::BufferUnreadable);
        if (!backend.read_vectored({spans.data(), spans.size()}, *offset))
            return fault(BlockFault::BackendError);
        return static_cast<uint32_t>(length);
    }
    Spans<const std::byte> spans;
    if (!guest_spans(request.data, memory, spans))
        return fault(BlockFault::BufferUnreadable);
    if (!backend.write_vectored({spans.data(), spans.size()}, *offset))
        return fault(BlockFault::BackendError);
    return 0;
}

// GET_ID (§5.2.6): up to 20 bytes of identifier, NUL-padded, not terminated
// when it uses all 20.
Done get_id(std::string_view id, std::span<const Buffer> data, const GuestMemory& memory) {
    if (!all_buffers(data, true))
        return fault(BlockFault::WrongDirection);
    std::array<uint8_t, kBlockIdLength> answer{};
    std::memcpy(answer.data(), id.data(), std::min(id.size(), answer.size()));
    uint32_t written = 0;
    for (const Buffer& buffer : data) {
        const uint32_t count = std::min<uint32_t>(buffer.length, answer.size() - written);
        if (!memory.write_bytes(buffer.address, std::span(answer).subspan(written, count)))
            return fault(BlockFault::BufferUnreadable);
        written += count;
    }
    return written;
}

// DISCARD and WRITE_ZEROES (§5.2.6.2): a list of 16-byte segments.
Done erase(img::BlockDevice& backend, const BlockRequestLimits& limits, const BlockRequest& request,
           const GuestMemory& memory) {
    const uint32_t type = request.header.type;
    const uint64_t length = total_length(request.data);
    if (!all_buffers(request.data, false))
        return fault(BlockFault::WrongDirection);
    if (length == 0 || length % sizeof(BlockSegment) != 0 ||
        length / sizeof(BlockSegment) > std::min(limits.max_segments, kMaxBlockSegments))
        return fault(BlockFault::BadSegmentList);
    std::array<BlockSegment, kMaxBlockSegments> segments;
    auto bytes = std::as_writable_bytes(std::span(segments));
    uint64_t position = 0;
    for (const Buffer& buffer : request.data) {
        if (!memory.read_bytes(
                buffer.address,
                std::span(reinterpret_cast<uint8_t*>(bytes.data()) + position, buffer.length)))
            return fault(BlockFault::BufferUnreadable);
        position += buffer.length;
    }
    // §5.2.6.2: DISCARD with the unmap flag, or any unknown flag, is UNSUPP.
    const uint32_t allowed_flags = type == kBlockRequestWriteZeroes ? 1 : 0;
    for (const BlockSegment& segment : std::span(segments).first(length / sizeof(BlockSegment))) {
        if (segment.flags & ~allowed_flags)
            return fault(BlockFault::UnsupportedFlags);
        if (segment.sectors > limits.max_segment_sectors)
            return fault(BlockFault::SegmentTooLarge);
        const uint64_t segment_bytes = uint64_t{segment.sectors} * kSectorSize;
        auto offset = checked_range(backend, segment.sector, segment_bytes);
        if (!offset)
            return fault(BlockFault::OutOfRange);
        auto result = type == kBlockRequestDiscard ? backend.discard(*offset, segment_bytes)
                                                   : backend.write_zeroes(*offset, segment_bytes);
        if (!result)
            return fault(BlockFault::BackendError);
    }
    return 0;
}

}  // namespace

const char* fault_name(BlockFault which) {
    switch (which) {
        case BlockFault::NoStatusBuffer:
            return "no_status_buffer";
        case BlockFault::BadHeader:
            return "bad_header";
        case BlockFault::WrongDirection:
            return "wrong_direction";
        case BlockFault::PartialSector:
            return "partial_sector";
        case BlockFault::OutOfRange:
            return "out_of_range";
        case BlockFault::ReadOnlyDevice:
            return "read_only_device";
        case BlockFault::BadSegmentList:
            return "bad_segment_list";
        case BlockFault::SegmentTooLarge:
            return "segment_too_large";
        case BlockFault::UnsupportedFlags:
            return "unsupported_flags";
        case BlockFault::UnsupportedType:
            return "unsupported_type";
        case BlockFault::BufferUnreadable:
            return "buffer_unreadable";
        case BlockFault::BackendError:
            return "backend_error";
    }
    return "unknown";
}

tl::expected<BlockRequest, BlockFault> parse_block_request(const virtio::DescriptorChain& chain,
                                                           const GuestMemory& memory) {
    const std::span<const Buffer> buffers(chain.buffers.data(), chain.buffers.size());
    // §5.2.6: header first, status byte last, in buffers of their own.
    if (buffers.size() < 2 || !buffers.back().device_writable || buffers.back().length < 1)
        return fault(BlockFault::NoStatusBuffer);
    const Buffer& head = buffers.front();
    if (head.device_writable || head.length < sizeof(BlockRequestHeader))
        return fault(BlockFault::BadHeader);
    auto header = memory.read<BlockRequestHeader>(head.address);
    if (!header)
        return fault(BlockFault::BadHeader);
    return BlockRequest{*header, buffers.subspan(1, buffers.size() - 2), buffers.back()};
}

tl::expected<uint32_t, BlockFault> execute_block_request(img::BlockDevice& backend,
                                                         const BlockRequestLimits& limits,
                                                         const BlockRequest& request,
                                                         const GuestMemory& memory) {
    switch (request.header.type) {
        case kBlockRequestIn:
            return transfer(backend, request, memory, true);
        case kBlockRequestOut:
            if (limits.read_only)
                return fault(BlockFault::ReadOnlyDevice);  // §5.2.6.2
            return transfer(backend, request, memory, false);
        case kBlockRequestFlush:
            return backend.flush() ? Done(0) : fault(BlockFault::BackendError);
        case kBlockRequestGetId:
            return get_id(limits.id, request.data, memory);
        case kBlockRequestDiscard:
        case kBlockRequestWriteZeroes:
            if (limits.read_only)
                return fault(BlockFault::ReadOnlyDevice);
            return erase(backend, limits, request, memory);
        default:
            return fault(BlockFault::UnsupportedType);
    }
}

BlockOutcome serve_block_request(img::BlockDevice& backend, const BlockRequestLimits& limits,
                                 const virtio::DescriptorChain& chain, const GuestMemory& memory) {
    auto request = parse_block_request(chain, memory);
    if (!request && request.error() == BlockFault::NoStatusBuffer)
        return {0, request.error()};
    // Without a readable header there is still a status byte to answer with.
    const Buffer status = request ? request->status : chain.buffers.back();
    const auto done = request ? execute_block_request(backend, limits, *request, memory)
                              : Done(tl::unexpect, request.error());
    uint8_t answer = kBlockStatusOk;
    if (!done)
        answer = done.error() == BlockFault::UnsupportedType ||
                         done.error() == BlockFault::UnsupportedFlags
                     ? kBlockStatusUnsupported
                     : kBlockStatusIoError;
    if (!memory.write<uint8_t>(status.address, answer))
        return {0, BlockFault::NoStatusBuffer};
    return {(done ? *done : 0) + 1, done ? std::nullopt : std::optional<BlockFault>(done.error())};
}

}  // namespace pv::vmm
