// Fuzz target: our qcow2 reader, the one that opens overlays and qemu-img
// made files. First parse_header() over the input as the header cluster,
// then the whole input as a read-only qcow2 file: open (header, L1,
// refcount table), reads through L1/L2, and map().

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "imgfmt/qcow2/header.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "tests/fuzz/fuzz_input.hpp"

namespace {

using pv::img::Qcow2Image;

// The header check compares offsets with the file size, so try the input's
// own length, a size derived from its last byte (so the fuzzer can make
// tables fit), and a huge file where every offset is "inside".
void parse_headers(const uint8_t* data, size_t size) {
    const std::vector<uint8_t> bytes(data, data + size);
    const unsigned shift = size > 0 ? data[size - 1] % 41 : 0;
    for (const uint64_t file_size : {uint64_t{size}, uint64_t{size} << shift, uint64_t{1} << 50}) {
        auto header = pv::img::qcow2::parse_header(bytes, file_size, "fuzz.qcow2");
        if (header)
            (void)pv::img::qcow2::serialize_header(*header);
    }
}

// map() promises extents that cover the range in order without gaps.
void check_map(Qcow2Image& image, uint64_t offset, uint64_t length) {
    auto extents = image.map(offset, length);
    if (!extents)
        return;
    uint64_t expected = offset;
    for (const auto& extent : *extents) {
        if (extent.offset != expected || extent.length == 0)
            std::abort();
        expected += extent.length;
    }
    if (expected != offset + length)
        std::abort();
    (void)image.data_extents(offset, length);
}

void read_some(Qcow2Image& image, uint64_t offset, size_t length) {
    if (offset >= image.size())
        return;
    std::vector<std::byte> buffer(std::min<uint64_t>(length, image.size() - offset));
    (void)image.read_at(buffer, offset);
}

void open_image(const uint8_t* data, size_t size) {
    const pv::fuzz::MemoryFile file(std::string_view(reinterpret_cast<const char*>(data), size));
    auto opened = Qcow2Image::open(file.path(), pv::Access::ReadOnly, pv::img::Backing::Refuse);
    if (!opened)
        return;
    Qcow2Image& image = **opened;
    const uint64_t virtual_size = image.size();
    const uint64_t cluster = image.cluster_size();
    // Reads that start, straddle a cluster boundary, and end the device.
    read_some(image, 0, 4096);
    read_some(image, cluster > 512 ? cluster - 512 : 0, 1024);
    read_some(image, virtual_size / 2, 3 * cluster);
    read_some(image, virtual_size > 4096 ? virtual_size - 4096 : 0, 4096);
    // Mapping is bounded to a few L2 tables' worth so that a huge virtual
    // size costs time proportional to the tables, not to the disk.
    const uint64_t span = std::min<uint64_t>(virtual_size, cluster * (cluster / 8) * 4);
    check_map(image, 0, span);
    check_map(image, virtual_size - span, span);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    parse_headers(data, size);
    open_image(data, size);
    return 0;
}
