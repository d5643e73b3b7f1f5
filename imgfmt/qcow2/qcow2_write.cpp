// Qcow2Image writes: in place into clusters this file owns, into new
// clusters allocated at the end of the file with copy-on-write of the
// partial head and tail (qcow2 spec, "Cluster mapping"), and zero clusters.

#include <sys/uio.h>

#include <cstring>

#include "imgfmt/qcow2/limits.hpp"
#include "imgfmt/qcow2/state.hpp"

namespace pv::img {
namespace {

using qcow2::ClusterKind;

// The rest of a partially written cluster: the backing file's bytes for a
// cluster this file does not hold, zeroes for a zero cluster.
Result<void> fill(Qcow2Image::State& state, std::span<std::byte> out, uint64_t pos,
                  ClusterKind kind) {
    if (kind == ClusterKind::Unallocated)
        return qcow2::read_backing(state, out, pos);
    std::memset(out.data(), 0, out.size());
    return {};
}

// Writes DATA (guest offset POS) as whole clusters starting at host offset
// HOST_CLUSTER, completing the first and last cluster from FILL_FROM, in
// one pwritev so that contiguous new clusters cost one system call.
Result<void> write_clusters(Qcow2Image::State& state, uint64_t host_cluster, uint64_t pos,
                            std::span<const std::byte> data, ClusterKind fill_from) {
    const uint64_t cluster_size = state.header.cluster_size();
    const uint64_t head = pos & (cluster_size - 1);
    const uint64_t end = pos + data.size();
    const uint64_t tail = (cluster_size - (end & (cluster_size - 1))) & (cluster_size - 1);
    iovec iov[3];
    int count = 0;
    if (head > 0) {
        PV_TRY(fill(state, std::span(state.head_fill).first(head), pos - head, fill_from));
        iov[count++] = iovec{state.head_fill.data(), head};
    }
    iov[count++] = iovec{const_cast<std::byte*>(data.data()), data.size()};
    if (tail > 0) {
        PV_TRY(fill(state, std::span(state.tail_fill).first(tail), end, fill_from));
        iov[count++] = iovec{state.tail_fill.data(), tail};
    }
    return qcow2::write_host(state, iov, count, host_cluster);
}

Result<void> write_in_place(Qcow2Image::State& state, std::span<const std::byte> data,
                            uint64_t host) {
    iovec iov{const_cast<std::byte*>(data.data()), data.size()};
    return qcow2::write_host(state, &iov, 1, host);
}

Result<void> write_run(Qcow2Image::State& state, qcow2::L2Table& table, const qcow2::Run& run,
                       std::span<const std::byte> data, uint64_t pos) {
    const uint64_t cluster_size = state.header.cluster_size();
    const uint64_t head = pos & (cluster_size - 1);
    const uint64_t clusters = (head + data.size() + cluster_size - 1) / cluster_size;
    uint64_t host_cluster = 0;
    switch (run.kind) {
        case ClusterKind::Data:
            if (!run.copied)
                break;
            return write_in_place(state, data, run.host);
        case ClusterKind::ZeroAllocated:
            if (!run.copied)
                break;
            host_cluster = run.host - head;
            PV_TRY(write_clusters(state, host_cluster, pos, data, ClusterKind::Zero));
            break;
        case ClusterKind::Unallocated:
        case ClusterKind::Zero:
            host_cluster = PV_TRY(state.meta->allocate(clusters));
            PV_TRY(write_clusters(state, host_cluster, pos, data, run.kind));
            break;
        case ClusterKind::Compressed:
            return fail(make_error(state.path, "writing to compressed clusters is not supported"));
    }
    if (host_cluster == 0)
        return fail(make_error(state.path,
                               "writing to clusters shared with a snapshot is not "
                               "supported"));
    // The data is in place; the L2 entries follow at the next flush. Our
    // clusters have refcount one, hence the "copied" flag (qcow2 spec).
    for (uint64_t i = 0; i < clusters; ++i)
        table.entries[run.l2_index + i] = (host_cluster + i * cluster_size) | qcow2::kEntryCopied;
    table.dirty = true;
    return {};
}

// Marks whole clusters [POS, POS + LENGTH) as zero clusters, keeping the
// allocation of clusters this file owns (qcow2 spec: a zero cluster may
// keep its host offset, "preallocated zero cluster").
Result<void> zero_whole_clusters(Qcow2Image::State& state, uint64_t pos, uint64_t length) {
    const uint64_t cluster_size = state.header.cluster_size();
    while (length > 0) {
        const uint64_t l1_index = qcow2::l1_index_of(state, pos);
        qcow2::L2Table* table = PV_TRY(state.meta->l2_for_read(l1_index));
        if (table == nullptr && state.backing)
            table = PV_TRY(state.meta->l2_for_write(l1_index));
        else if (table != nullptr)
            table = PV_TRY(state.meta->l2_for_write(l1_index));
        const qcow2::Run run = PV_TRY(qcow2::find_run(state, table, pos, length));
        if (table != nullptr) {
            if (run.kind == ClusterKind::Compressed || (run.host != 0 && !run.copied))
                return fail(make_error(state.path,
                                       "zeroing compressed or shared clusters is not "
                                       "supported"));
            for (uint64_t i = 0; i < run.length / cluster_size; ++i) {
                uint64_t& entry = table->entries[run.l2_index + i];
                entry = run.host != 0 ? (entry | qcow2::kL2ZeroFlag) : qcow2::kL2ZeroFlag;
            }
            table->dirty = true;
        }
        pos += run.length;
        length -= run.length;
    }
    return {};
}

}  // namespace

Result<void> Qcow2Image::write_at(std::span<const std::byte> buffer, uint64_t offset) {
    PV_TRY(check_range("write", offset, buffer.size()));
    State& state = *m_state;
    if (state.access == Access::ReadOnly)
        return fail(make_error("write " + state.path, "image is open read-only"));
    uint64_t done = 0;
    while (done < buffer.size()) {
        const uint64_t pos = offset + done;
        qcow2::L2Table* table = PV_TRY(state.meta->l2_for_write(qcow2::l1_index_of(state, pos)));
        const qcow2::Run run = PV_TRY(qcow2::find_run(state, table, pos, buffer.size() - done));
        state.data_pending = true;
        PV_TRY(write_run(state, *table, run, buffer.subspan(done, run.length), pos));
        done += run.length;
    }
    return {};
}

Result<void> Qcow2Image::write_zeroes(uint64_t offset, uint64_t length) {
    PV_TRY(check_range("write zeroes to", offset, length));
    State& state = *m_state;
    if (state.access == Access::ReadOnly)
        return fail(make_error("write " + state.path, "image is open read-only"));
    if (state.header.version < 3)  // Version 2 has no zero flag.
        return BlockDevice::write_zeroes(offset, length);
    const uint64_t cluster_size = state.header.cluster_size();
    const uint64_t first =
        std::min(offset + length, (offset + cluster_size - 1) & ~(cluster_size - 1));
    const uint64_t last = std::max(first, (offset + length) & ~(cluster_size - 1));
    if (first > offset)
        PV_TRY(BlockDevice::write_zeroes(offset, first - offset));
    PV_TRY(zero_whole_clusters(state, first, last - first));
    if (offset + length > last)
        PV_TRY(BlockDevice::write_zeroes(last, offset + length - last));
    return {};
}

}  // namespace pv::img
