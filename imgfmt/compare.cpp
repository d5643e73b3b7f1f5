#include "imgfmt/compare.hpp"

#include <algorithm>
#include <vector>

namespace pv::img {

namespace {

constexpr uint64_t kChunk = 1 << 20;

std::optional<Difference> first_difference(const std::vector<std::byte>& first,
                                           const std::vector<std::byte>& second, uint64_t length,
                                           uint64_t offset) {
    const auto end = first.begin() + static_cast<ptrdiff_t>(length);
    const auto [at_first, at_second] = std::mismatch(first.begin(), end, second.begin());
    if (at_first == end)
        return std::nullopt;
    return Difference{offset + static_cast<uint64_t>(at_first - first.begin()),
                      static_cast<uint8_t>(*at_first), static_cast<uint8_t>(*at_second)};
}

}  // namespace

Result<std::optional<Difference>> compare_devices(BlockDevice& first, BlockDevice& second) {
    const uint64_t size = std::max(first.size(), second.size());
    std::vector<std::byte> first_buffer(kChunk);
    std::vector<std::byte> second_buffer(kChunk);
    for (uint64_t offset = 0; offset < size; offset += kChunk) {
        const uint64_t length = std::min(kChunk, size - offset);
        // Past the end of the shorter disk it reads as zeroes.
        for (auto [device, buffer] :
             {std::pair{&first, &first_buffer}, std::pair{&second, &second_buffer}}) {
            std::fill(buffer->begin(), buffer->end(), std::byte{0});
            if (offset < device->size()) {
                const uint64_t readable = std::min(length, device->size() - offset);
                PV_TRY(device->read_at(std::span(buffer->data(), readable), offset));
            }
        }
        if (auto difference = first_difference(first_buffer, second_buffer, length, offset))
            return difference;
    }
    return std::optional<Difference>{};
}

}  // namespace pv::img
