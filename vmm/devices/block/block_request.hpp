#pragma once

// One virtio-blk request (virtio 1.2 §5.2.6): header, data buffers, status
// byte. Separate from the device so that request handling can be tested and
// fuzzed over plain memory and a fake backend.

#include <cstdint>
#include <string_view>

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

struct BlockRequestLimits {
    bool read_only = false;
    std::string_view id;
    uint32_t max_segments = 1;         // per DISCARD / WRITE_ZEROES request
    uint32_t max_segment_sectors = 0;  // per segment
};

// Executes CHAIN against BACKEND and returns the used length: data bytes
// written to the driver plus the status byte, or 0 when the chain has no
// place for a status (too short, or its last buffer is not writable).
[[nodiscard]] uint32_t execute_block_request(img::BlockDevice& backend,
                                             const BlockRequestLimits& limits,
                                             const virtio::DescriptorChain& chain,
                                             const GuestMemory& memory);

}  // namespace pv::vmm
