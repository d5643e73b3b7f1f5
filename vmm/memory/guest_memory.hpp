#pragma once

// GuestMemory is the only door to guest RAM. Every access
// names a guest-physical address and a length and is checked against the
// regions, with overflow-safe arithmetic, because the guest chooses both.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "common/error.hpp"

namespace pv::vmm {

// Move-only owner of an anonymous mapping.
class Mapping {
  public:
    Mapping() = default;
    Mapping(Mapping&& other) noexcept;
    Mapping& operator=(Mapping&& other) noexcept;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();

    // Anonymous, private, MAP_NORESERVE: pages cost nothing until the guest
    // touches them, so a large --mem-mib does not commit host memory.
    [[nodiscard]] static Result<Mapping> anonymous(size_t size);

    [[nodiscard]] uint8_t* data() const { return m_data; }
    [[nodiscard]] size_t size() const { return m_size; }

  private:
    uint8_t* m_data = nullptr;
    size_t m_size = 0;
};

struct MemoryRegion {
    uint64_t guest_address = 0;
    uint64_t size = 0;
};

class GuestMemory {
  public:
    struct Region {
        uint64_t guest_address;
        uint64_t size;
        uint8_t* host;
    };

    // Regions must not overlap and must have non-zero, page-multiple sizes.
    [[nodiscard]] static Result<GuestMemory> create(const std::vector<MemoryRegion>& layout);

    [[nodiscard]] const std::vector<Region>& regions() const { return m_regions; }
    [[nodiscard]] uint64_t total_size() const;

    // The host bytes of [address, address + length) if the whole range lies in
    // one region; an error otherwise (including on address + length overflow).
    [[nodiscard]] Result<std::span<uint8_t>> slice(uint64_t address, uint64_t length) const;

    [[nodiscard]] Result<void> write_bytes(uint64_t address, std::span<const uint8_t> bytes) const;
    [[nodiscard]] Result<void> read_bytes(uint64_t address, std::span<uint8_t> bytes) const;
    [[nodiscard]] Result<void> fill(uint64_t address, uint64_t length, uint8_t value) const;

    template <class T>
    [[nodiscard]] Result<T> read(uint64_t address) const {
        static_assert(std::is_trivially_copyable_v<T>);
        auto bytes = PV_TRY(slice(address, sizeof(T)));
        T value;
        std::memcpy(&value, bytes.data(), sizeof(T));
        return value;
    }

    template <class T>
    [[nodiscard]] Result<void> write(uint64_t address, const T& value) const {
        static_assert(std::is_trivially_copyable_v<T>);
        auto bytes = PV_TRY(slice(address, sizeof(T)));
        std::memcpy(bytes.data(), &value, sizeof(T));
        return {};
    }

    // Host pages of guest RAM that are resident (mincore), for RSS accounting.
    [[nodiscard]] uint64_t resident_bytes() const;

  private:
    std::vector<Mapping> m_mappings;
    std::vector<Region> m_regions;
};

}  // namespace pv::vmm
