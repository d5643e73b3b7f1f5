#include "imgfmt/block_device.hpp"

#include <algorithm>
#include <vector>

namespace pv::img {

Result<void> BlockDevice::write_zeroes(uint64_t offset, uint64_t length) {
    PV_TRY(check_range("write zeroes to", offset, length));
    const std::vector<std::byte> zeroes(std::min<uint64_t>(length, 1 << 20));
    while (length > 0) {
        const uint64_t chunk = std::min<uint64_t>(length, zeroes.size());
        PV_TRY(write_at(std::span(zeroes.data(), chunk), offset));
        offset += chunk;
        length -= chunk;
    }
    return {};
}

Result<void> BlockDevice::read_vectored(std::span<const std::span<std::byte>> buffers,
                                        uint64_t offset) {
    for (const auto& buffer : buffers) {
        PV_TRY(read_at(buffer, offset));
        offset += buffer.size();
    }
    return {};
}

Result<void> BlockDevice::write_vectored(std::span<const std::span<const std::byte>> buffers,
                                         uint64_t offset) {
    for (const auto& buffer : buffers) {
        PV_TRY(write_at(buffer, offset));
        offset += buffer.size();
    }
    return {};
}

Result<void> BlockDevice::discard(uint64_t offset, uint64_t length) {
    return check_range("discard on", offset, length);
}

Result<std::vector<Extent>> BlockDevice::map(uint64_t offset, uint64_t length) {
    PV_TRY(check_range("map", offset, length));
    return std::vector<Extent>{Extent{offset, length, ExtentKind::Data}};
}

Result<void> BlockDevice::check_range(const char* verb, uint64_t offset, uint64_t length) const {
    const uint64_t end = offset + length;
    if (end < offset || end > size())
        return fail(make_error(std::string(verb) + " " + name(),
                               "range " + std::to_string(offset) + "+" + std::to_string(length) +
                                   " is past the end of the device (" + std::to_string(size()) +
                                   " bytes)"));
    return {};
}

}  // namespace pv::img
