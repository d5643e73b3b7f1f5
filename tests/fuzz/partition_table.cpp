// Fuzz target: MBR/GPT parsing and filesystem signature probing over the
// input as the first bytes of a guest disk, which a hostile image controls.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "imgfmt/partition/partition_table.hpp"

namespace {

// parse_partition_table promises to drop entries beyond the disk; a
// partition that reaches past it (or whose end overflows) would make the
// agent read outside the device.
void check_partitions(std::string_view head, uint32_t sector_size, uint64_t disk_size) {
    for (const auto& partition : pv::img::parse_partition_table(head, sector_size, disk_size)) {
        if (partition.number == 0 || partition.offset > disk_size ||
            partition.size > disk_size - partition.offset)
            std::abort();
        // The agent probes each partition it finds; do the same with the
        // part of the input the partition covers.
        if (partition.offset < head.size()) {
            const uint64_t length = std::min<uint64_t>(
                {partition.size, head.size() - partition.offset, pv::img::kFilesystemProbeBytes});
            (void)pv::img::detect_filesystem(head.substr(partition.offset, length));
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view head(reinterpret_cast<const char*>(data), size);
    // The disk as long as the input, and a large disk whose table entries
    // may point far beyond the bytes we have.
    for (const uint32_t sector_size : {512u, 4096u}) {
        check_partitions(head, sector_size, size);
        check_partitions(head, sector_size, uint64_t{1} << 40);
    }
    (void)pv::img::detect_filesystem(head);
    return 0;
}
