#include "vmm/memory/guest_memory.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace pv::vmm {

Mapping::Mapping(Mapping&& other) noexcept
    : m_data(std::exchange(other.m_data, nullptr)), m_size(std::exchange(other.m_size, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
    if (this != &other) {
        if (m_data)
            munmap(m_data, m_size);
        m_data = std::exchange(other.m_data, nullptr);
        m_size = std::exchange(other.m_size, 0);
    }
    return *this;
}

Mapping::~Mapping() {
    if (m_data)
        munmap(m_data, m_size);
}

Result<Mapping> Mapping::anonymous(size_t size) {
    void* data = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (data == MAP_FAILED)
        return fail(errno_error(fmt::format("mmap {} bytes of guest memory", size)));
    Mapping mapping;
    mapping.m_data = static_cast<uint8_t*>(data);
    mapping.m_size = size;
    return mapping;
}

Result<GuestMemory> GuestMemory::create(const std::vector<MemoryRegion>& layout) {
    constexpr uint64_t page = 4096;
    std::vector<MemoryRegion> sorted = layout;
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.guest_address < b.guest_address; });
    GuestMemory memory;
    uint64_t previous_end = 0;
    for (const auto& region : sorted) {
        uint64_t end = 0;
        if (region.size == 0 || region.size % page != 0 || region.guest_address % page != 0 ||
            __builtin_add_overflow(region.guest_address, region.size, &end) ||
            region.guest_address < previous_end)
            return fail(make_error(
                "create guest memory",
                fmt::format("bad region at {:#x} size {:#x}", region.guest_address, region.size)));
        previous_end = end;
        auto mapping = PV_TRY(Mapping::anonymous(region.size));
        memory.m_regions.push_back({region.guest_address, region.size, mapping.data()});
        memory.m_mappings.push_back(std::move(mapping));
    }
    if (memory.m_regions.empty())
        return fail(make_error("create guest memory", "no regions"));
    return memory;
}

uint64_t GuestMemory::total_size() const {
    uint64_t total = 0;
    for (const auto& region : m_regions)
        total += region.size;
    return total;
}

Result<std::span<uint8_t>> GuestMemory::slice(uint64_t address, uint64_t length) const {
    uint64_t end = 0;
    if (!__builtin_add_overflow(address, length, &end)) {
        for (const auto& region : m_regions) {
            // Written so that neither side can overflow: region end is valid by
            // construction and address >= guest_address is checked first.
            if (address >= region.guest_address && address - region.guest_address <= region.size &&
                length <= region.size - (address - region.guest_address))
                return std::span<uint8_t>(region.host + (address - region.guest_address), length);
        }
    }
    return fail(
        make_error("access guest memory",
                   fmt::format("{:#x} bytes at {:#x} are outside guest RAM", length, address)));
}

Result<void> GuestMemory::write_bytes(uint64_t address, std::span<const uint8_t> bytes) const {
    auto target = PV_TRY(slice(address, bytes.size()));
    if (!bytes.empty())
        std::memcpy(target.data(), bytes.data(), bytes.size());
    return {};
}

Result<void> GuestMemory::read_bytes(uint64_t address, std::span<uint8_t> bytes) const {
    auto source = PV_TRY(slice(address, bytes.size()));
    if (!bytes.empty())
        std::memcpy(bytes.data(), source.data(), bytes.size());
    return {};
}

Result<void> GuestMemory::fill(uint64_t address, uint64_t length, uint8_t value) const {
    auto target = PV_TRY(slice(address, length));
    std::memset(target.data(), value, target.size());
    return {};
}

uint64_t GuestMemory::resident_bytes() const {
    const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    uint64_t resident = 0;
    std::vector<unsigned char> vector;
    for (const auto& region : m_regions) {
        vector.assign((region.size + page - 1) / page, 0);
        if (mincore(region.host, region.size, vector.data()) != 0)
            continue;
        for (unsigned char bits : vector)
            resident += (bits & 1) ? page : 0;
    }
    return resident;
}

}  // namespace pv::vmm
