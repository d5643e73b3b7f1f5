#include "vmm/boot/boot_params.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "vmm/boot/layout.hpp"

namespace pv::vmm::boot {

Result<void> add_e820_entry(BootParams& params, uint64_t address, uint64_t size, uint32_t type) {
    uint64_t end = 0;
    if (size == 0 || __builtin_add_overflow(address, size, &end))
        return fail(
            make_error("add e820 entry", fmt::format("bad range {:#x}+{:#x}", address, size)));
    if (params.e820_entries >= kE820MaxEntries)
        return fail(make_error("add e820 entry", "table full"));
    params.e820_table[params.e820_entries++] = E820Entry{address, size, type};
    return {};
}

Result<void> fill_e820(BootParams& params, uint64_t memory_size) {
    using namespace layout;
    if (memory_size < kHighMemoryStart + 16 * kMiB)
        return fail(make_error("build e820 map", "guest memory below 17 MiB"));
    params.e820_entries = 0;
    PV_TRY(add_e820_entry(params, 0, kEbdaStart, kE820Ram));
    // 0x9fc00-0x100000 (EBDA, video, ROMs) is not RAM on a PC; the MP table
    // lives there, so Linux must not reuse it.
    PV_TRY(add_e820_entry(params, kEbdaStart, kHighMemoryStart - kEbdaStart, kE820Reserved));
    uint64_t low_end = std::min(memory_size, kMmioGapStart);
    PV_TRY(add_e820_entry(params, kHighMemoryStart, low_end - kHighMemoryStart, kE820Ram));
    if (memory_size > kMmioGapStart)
        PV_TRY(add_e820_entry(params, kMmioGapEnd, memory_size - kMmioGapStart, kE820Ram));
    return {};
}

Result<void> check_cmdline(std::string_view cmdline, uint32_t limit) {
    if (cmdline.find('\0') != std::string_view::npos)
        return fail(make_error("check kernel command line", "contains a NUL byte"));
    if (cmdline.size() > limit || cmdline.size() + 1 > layout::kCmdlineMaxSize)
        return fail(make_error("check kernel command line",
                               fmt::format("{} bytes, kernel accepts {}", cmdline.size(), limit)));
    return {};
}

}  // namespace pv::vmm::boot
