#pragma once

// One virtio-blk request (virtio 1.2 §5.2.6): header, data buffers, status
// byte. Separate from the device so that request handling can be tested and
// fuzzed over plain memory and a fake backend.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include <tl/expected.hpp>

#include "imgfmt/block_device.hpp"
#include "vmm/memory/guest_memory.hpp"
#include "vmm/virtio/queue.hpp"

namespace pv::vmm {

// §5.2.6: the request header the driver places first.
struct BlockRequestHeader {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
static_assert(sizeof(BlockRequestHeader) == 16);

// §5.2.6: one DISCARD / WRITE_ZEROES range.
struct BlockSegment {
    uint64_t sector;
    uint32_t sectors;
    uint32_t flags;
};
static_assert(sizeof(BlockSegment) == 16);

// The most segments one DISCARD / WRITE_ZEROES request may carry.
inline constexpr uint32_t kMaxBlockSegments = 16;

struct BlockRequestLimits {
    bool read_only = false;
    std::string_view id;
    uint32_t max_segments = 1;         // per DISCARD / WRITE_ZEROES, ≤ kMaxBlockSegments
    uint32_t max_segment_sectors = 0;  // per segment
};

// Why a request was not carried out. The guest chooses every one of them,
// so each is a value with a counter (VirtioBlock::fault_counts), never a
// message built and thrown away.
enum class BlockFault : uint8_t {
    NoStatusBuffer,    // too short, or the last buffer is no writable status byte
    BadHeader,         // the first buffer is no readable 16-byte header
    WrongDirection,    // a data buffer in the direction the type forbids
    PartialSector,     // IN/OUT data not a multiple of 512 bytes
    OutOfRange,        // sectors past the capacity, or arithmetic that overflows
    ReadOnlyDevice,    // OUT, DISCARD or WRITE_ZEROES on a read-only device
    BadSegmentList,    // DISCARD/WRITE_ZEROES: no, ragged or too many segments
    SegmentTooLarge,   // a segment over max_segment_sectors
    UnsupportedFlags,  // a segment flag its type does not allow (answered UNSUPP)
    UnsupportedType,   // a request type the device does not offer (UNSUPP)
    BufferUnreadable,  // guest memory of a buffer could not be accessed
    BackendError,      // the image layer failed
};
inline constexpr size_t kBlockFaultCount = 12;

// snake_case, for --json: "out_of_range".
[[nodiscard]] const char* fault_name(BlockFault fault);

// A chain taken apart (§5.2.6): header first, status byte last, the data
// buffers between.
struct BlockRequest {
    BlockRequestHeader header;
    std::span<const virtio::Buffer> data;
    virtio::Buffer status;
};

[[nodiscard]] tl::expected<BlockRequest, BlockFault> parse_block_request(
    const virtio::DescriptorChain& chain, const GuestMemory& memory);

// Carries out REQUEST against BACKEND: the data bytes written into the
// driver's buffers.
[[nodiscard]] tl::expected<uint32_t, BlockFault> execute_block_request(
    img::BlockDevice& backend, const BlockRequestLimits& limits, const BlockRequest& request,
    const GuestMemory& memory);

struct BlockOutcome {
    // Data bytes written to the driver plus the status byte; 0 when the
    // chain has no place for a status.
    uint32_t used = 0;
    std::optional<BlockFault> fault;
};

// Parses and executes CHAIN, then writes its status byte (after all data,
// §5.2.6): OK, UNSUPP for an unsupported type or flag, IOERR otherwise.
[[nodiscard]] BlockOutcome serve_block_request(img::BlockDevice& backend,
                                               const BlockRequestLimits& limits,
                                               const virtio::DescriptorChain& chain,
                                               const GuestMemory& memory);

}  // namespace pv::vmm
