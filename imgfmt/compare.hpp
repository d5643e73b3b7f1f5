#pragma once

// Comparing the virtual disks of two images, the way `qemu-img compare`
// does by default: where one disk is longer, its extra part must read as
// zeroes for the two to count as equal.

#include <cstdint>
#include <optional>

#include "common/error.hpp"
#include "imgfmt/block_device.hpp"

namespace pv::img {

struct Difference {
    uint64_t offset = 0;
    uint8_t first = 0;   // the byte in the first image
    uint8_t second = 0;  // the byte in the second image
};

// No value when the disks are equal; the first differing byte otherwise.
[[nodiscard]] Result<std::optional<Difference>> compare_devices(BlockDevice& first,
                                                                BlockDevice& second);

}  // namespace pv::img
