#pragma once

// Guest RAM for the fuzz targets of vmm/: plain anonymous memory, no
// /dev/kvm, created once per process (the mapping costs more than most
// runs) and refilled from the input on every run.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "vmm/memory/guest_memory.hpp"

namespace pv::fuzz {

// REGIONS as GuestMemory::create takes them; aborts if they are invalid,
// since that is a bug in the target, not a finding.
inline vmm::GuestMemory make_guest_ram(const std::vector<vmm::MemoryRegion>& regions) {
    auto memory = vmm::GuestMemory::create(regions);
    if (!memory)
        std::abort();
    return std::move(*memory);
}

// Zeroes every region, then copies BYTES to guest address 0 (as much as
// fits in the first region).
inline void load_guest_ram(const vmm::GuestMemory& memory, std::string_view bytes) {
    for (const auto& region : memory.regions())
        std::memset(region.host, 0, region.size);
    const auto& first = memory.regions().front();
    std::copy_n(bytes.begin(), std::min<uint64_t>(bytes.size(), first.size), first.host);
}

// A check the code under test promises; a violation is a finding.
inline void require(bool condition) {
    if (!condition)
        __builtin_trap();
}

}  // namespace pv::fuzz
