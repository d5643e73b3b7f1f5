#pragma once

// The part of the i8042 keyboard controller a microVM needs: command 0xfe
// ("pulse reset line", written to the command port 0x64) resets the
// machine, which ends the VM (Linux's `reboot=k` and our test guest use
// it); the status and data ports tell a driver at once that no keyboard
// controller is there to set up (i8042.cpp says how).

#include <cstdint>
#include <functional>
#include <span>

#include "vmm/bus/bus.hpp"

namespace pv::vmm {

inline constexpr uint64_t kI8042DataPort = 0x60;
inline constexpr uint64_t kI8042CommandPort = 0x64;

class I8042 final : public BusDevice {
  public:
    explicit I8042(std::function<void()> on_reset) : m_on_reset(std::move(on_reset)) {}

    // Inserted over 0x60..0x64 (5 ports); only offsets 0 and 4 are registers.
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

  private:
    std::function<void()> m_on_reset;
};

}  // namespace pv::vmm
