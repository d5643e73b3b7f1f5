#include "vmm/devices/i8042/i8042.hpp"

#include <algorithm>

namespace pv::vmm {

namespace {
constexpr uint64_t kCommandOffset = kI8042CommandPort - kI8042DataPort;
constexpr uint8_t kCommandPulseReset = 0xfe;
}  // namespace

void I8042::read(uint64_t, std::span<uint8_t> data) {
    // Status 0: output buffer empty and input buffer empty, so a driver that
    // polls before writing a command never waits.
    std::fill(data.begin(), data.end(), 0);
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset == kCommandOffset && !data.empty() && data[0] == kCommandPulseReset && m_on_reset)
        m_on_reset();
}

}  // namespace pv::vmm
