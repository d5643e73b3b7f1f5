#pragma once

// Port I/O and MMIO dispatch: the vCPU exit handler hands
// an access to a Bus, which finds the device owning the address and passes it
// the offset from the device's base. The same class serves both address
// spaces; virtio-mmio transports join the MMIO bus as BusDevices.
// Devices are inserted before the vCPUs start, so lookups need no lock; each
// device guards its own state.

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/error.hpp"

namespace pv::vmm {

class BusDevice {
  public:
    virtual ~BusDevice() = default;
    // `offset` is relative to the base the device was inserted at; `data` is
    // the 1, 2, 4 or 8 bytes of the access.
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
  public:
    // Refuses empty, overflowing or overlapping ranges.
    [[nodiscard]] Result<void> insert(std::shared_ptr<BusDevice> device, uint64_t base,
                                      uint64_t length);

    // False when no single device covers [address, address + data.size());
    // an unclaimed read returns all ones, like an open PC bus.
    [[nodiscard]] bool read(uint64_t address, std::span<uint8_t> data) const;
    [[nodiscard]] bool write(uint64_t address, std::span<const uint8_t> data) const;

  private:
    struct Range {
        uint64_t base;
        uint64_t length;
        std::shared_ptr<BusDevice> device;
    };
    [[nodiscard]] const Range* find(uint64_t address, uint64_t length) const;

    std::vector<Range> m_ranges;  // sorted by base, disjoint
};

}  // namespace pv::vmm
