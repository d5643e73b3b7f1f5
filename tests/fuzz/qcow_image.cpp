// Fuzz target: opening a user's image the way every command does: format
// detection by magic, header inspection, and the qcow/qcow2 reader (our
// L1/L2 walk checking every entry at open, libqcow for compressed
// clusters) or the raw reader, followed by a few reads. Backing files
// are refused, as for any image we did not create.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "imgfmt/image.hpp"
#include "tests/fuzz/fuzz_input.hpp"

namespace {

void read_some(pv::img::BlockDevice& device, uint64_t offset, size_t length) {
    if (offset >= device.size())
        return;
    std::vector<std::byte> buffer(std::min<uint64_t>(length, device.size() - offset));
    (void)device.read_at(buffer, offset);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const pv::fuzz::MemoryFile file(std::string_view(reinterpret_cast<const char*>(data), size));
    (void)pv::img::detect_format(file.path());
    (void)pv::img::inspect_image(file.path());
    auto opened = pv::img::open_image(file.path(), pv::Access::ReadOnly, pv::img::Backing::Refuse);
    if (!opened)
        return 0;
    pv::img::BlockDevice& device = **opened;
    const uint64_t device_size = device.size();
    read_some(device, 0, 4096);
    read_some(device, 65536 - 512, 1024);
    read_some(device, device_size / 2, 128 * 1024);
    read_some(device, device_size > 4096 ? device_size - 4096 : 0, 4096);
    (void)device.map(0, std::min<uint64_t>(device_size, uint64_t{1} << 30));
    return 0;
}
