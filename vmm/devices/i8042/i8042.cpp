#include "vmm/devices/i8042/i8042.hpp"

#include <algorithm>

namespace pv::vmm {

namespace {
constexpr uint64_t kCommandOffset = kI8042CommandPort - kI8042DataPort;
constexpr uint8_t kCommandPulseReset = 0xfe;
// Status register bits (the 8042's status byte at port 0x64).
constexpr uint8_t kStatusOutputFull = 0x01;
}  // namespace

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
    if (data.empty())
        return;
    // No keyboard or mouse is attached, and a driver must find that out at
    // once. The status says "output full, input empty": a driver that
    // waits to write a command (Linux's reboot=k, kb_wait) never waits,
    // and one that drains the output first (Linux's i8042_flush, before
    // any command) reads its 16-byte buffer size of 0xff and concludes
    // "No controller found" without issuing a command. A status of 0 made
    // Linux send "read CTR" and poll 10000 times (half a second and 10000
    // VM exits) for an answer that never came.
    data[0] = offset == kCommandOffset ? kStatusOutputFull : 0xff;
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset == kCommandOffset && !data.empty() && data[0] == kCommandPulseReset && m_on_reset)
        m_on_reset();
}

}  // namespace pv::vmm
