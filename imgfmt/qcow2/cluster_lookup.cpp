// Guest offset -> cluster run lookups shared by read, write and map
// (qcow2 spec, "Cluster mapping").

#include <algorithm>
#include <cstring>

#include "imgfmt/qcow2/limits.hpp"
#include "imgfmt/qcow2/state.hpp"

namespace pv::img::qcow2 {
namespace {

// Bits 56-61 of a standard L2 entry are reserved (qcow2 spec).
constexpr uint64_t kL2ReservedHighBits = 0x3f00000000000000ull;

struct ClusterInfo {
    ClusterKind kind = ClusterKind::Unallocated;
    uint64_t host = 0;
    bool copied = false;
};

Result<ClusterInfo> classify(const Qcow2Image::State& state, uint64_t entry) {
    ClusterInfo info;
    info.copied = (entry & kEntryCopied) != 0;
    if (entry & kEntryCompressed) {
        info.kind = ClusterKind::Compressed;
        return info;
    }
    info.host = entry & kOffsetMask;
    const bool zero = state.header.version >= 3 && (entry & kL2ZeroFlag) != 0;
    if ((info.host & (state.header.cluster_size() - 1)) != 0 || (entry & kL2ReservedHighBits) != 0)
        return fail(make_error(state.path, fmt_hex("corrupt L2 table entry ", entry)));
    if (zero)
        info.kind = info.host != 0 ? ClusterKind::ZeroAllocated : ClusterKind::Zero;
    else
        info.kind = info.host != 0 ? ClusterKind::Data : ClusterKind::Unallocated;
    return info;
}

bool has_host(ClusterKind kind) {
    return kind == ClusterKind::Data || kind == ClusterKind::ZeroAllocated;
}

}  // namespace

uint64_t l1_index_of(const Qcow2Image::State& state, uint64_t guest_offset) {
    const Geometry& g = state.meta->geometry();
    return guest_offset >> (g.cluster_bits + g.l2_bits);
}

Result<Run> find_run(Qcow2Image::State& state, const L2Table* table, uint64_t pos,
                     uint64_t remaining) {
    const Geometry& g = state.meta->geometry();
    const uint64_t table_span = uint64_t{1} << (g.cluster_bits + g.l2_bits);
    const uint64_t limit = std::min(pos + remaining, (pos & ~(table_span - 1)) + table_span);
    Run run;
    run.l2_index = (pos >> g.cluster_bits) & (g.l2_entries() - 1);
    if (table == nullptr) {
        run.length = limit - pos;
        return run;
    }
    const ClusterInfo first = PV_TRY(classify(state, table->entries[run.l2_index]));
    uint64_t next = (pos | (g.cluster_size - 1)) + 1;
    uint64_t expected_host = first.host + g.cluster_size;
    for (uint64_t i = run.l2_index + 1; next < limit; ++i) {
        const ClusterInfo info = PV_TRY(classify(state, table->entries[i]));
        if (info.kind != first.kind || info.copied != first.copied ||
            first.kind == ClusterKind::Compressed)
            break;
        if (has_host(info.kind) && info.host != expected_host)
            break;
        expected_host += g.cluster_size;
        next += g.cluster_size;
    }
    run.kind = first.kind;
    run.copied = first.copied;
    run.host = has_host(first.kind) ? first.host + (pos & (g.cluster_size - 1)) : 0;
    run.length = std::min(next, limit) - pos;
    return run;
}

Result<void> read_backing(Qcow2Image::State& state, std::span<std::byte> out, uint64_t pos) {
    uint64_t available = 0;
    if (state.backing && pos < state.backing->size())
        available = std::min<uint64_t>(out.size(), state.backing->size() - pos);
    if (available > 0)
        PV_TRY(state.backing->read_at(out.first(available), pos));
    std::memset(out.data() + available, 0, out.size() - available);
    return {};
}

}  // namespace pv::img::qcow2
