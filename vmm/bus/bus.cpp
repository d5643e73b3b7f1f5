#include "vmm/bus/bus.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace pv::vmm {

Result<void> Bus::insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length) {
    uint64_t end = 0;
    if (!device || length == 0 || __builtin_add_overflow(base, length, &end))
        return fail(
            make_error("insert bus device", fmt::format("bad range {:#x}+{:#x}", base, length)));
    auto position =
        std::lower_bound(m_ranges.begin(), m_ranges.end(), base,
                         [](const Range& range, uint64_t key) { return range.base < key; });
    bool overlaps_next = position != m_ranges.end() && position->base < end;
    bool overlaps_previous = position != m_ranges.begin() &&
                             std::prev(position)->base + std::prev(position)->length > base;
    if (overlaps_next || overlaps_previous)
        return fail(make_error("insert bus device",
                               fmt::format("{:#x}+{:#x} overlaps another device", base, length)));
    m_ranges.insert(position, Range{base, length, std::move(device)});
    return {};
}

const Bus::Range* Bus::find(uint64_t address, uint64_t length) const {
    auto position =
        std::upper_bound(m_ranges.begin(), m_ranges.end(), address,
                         [](uint64_t key, const Range& range) { return key < range.base; });
    if (position == m_ranges.begin())
        return nullptr;
    const Range& range = *std::prev(position);
    uint64_t offset = address - range.base;
    if (offset >= range.length || length > range.length - offset)
        return nullptr;
    return &range;
}

bool Bus::read(uint64_t address, std::span<uint8_t> data) const {
    const Range* range = find(address, data.size());
    if (!range) {
        std::memset(data.data(), 0xff, data.size());
        return false;
    }
    range->device->read(address - range->base, data);
    return true;
}

bool Bus::write(uint64_t address, std::span<const uint8_t> data) const {
    const Range* range = find(address, data.size());
    if (!range)
        return false;
    range->device->write(address - range->base, data);
    return true;
}

}  // namespace pv::vmm
