// Qcow2Image: reads, map and flush; writes live in qcow2_write.cpp, opening
// and creating in qcow2_open.cpp.

#include "imgfmt/qcow2/qcow2_image.hpp"

#include <unistd.h>

#include <cstring>

#include "imgfmt/qcow2/state.hpp"

namespace pv::img {
namespace {

using qcow2::ClusterKind;

// Reads host bytes of a data cluster. QEMU may leave the last cluster of a
// file short (it relies on reads past the end returning zeroes), so the
// part past the end of the file reads as zeroes here too.
Result<void> read_host(const Qcow2Image::State& state, std::span<std::byte> out, uint64_t host) {
    size_t done = 0;
    while (done < out.size()) {
        const ssize_t got = ::pread(state.fd.get(), out.data() + done, out.size() - done,
                                    static_cast<off_t>(host + done));
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return fail(
                errno_error("read " + state.path + " at offset " + std::to_string(host + done)));
        }
        if (got == 0)
            break;
        done += static_cast<size_t>(got);
    }
    std::memset(out.data() + done, 0, out.size() - done);
    return {};
}

Result<void> read_run(Qcow2Image::State& state, const qcow2::Run& run, std::span<std::byte> out,
                      uint64_t pos) {
    switch (run.kind) {
        case ClusterKind::Data:
            return read_host(state, out, run.host);
        case ClusterKind::Zero:
        case ClusterKind::ZeroAllocated:
            std::memset(out.data(), 0, out.size());
            return {};
        case ClusterKind::Unallocated:
            return qcow2::read_backing(state, out, pos);
        case ClusterKind::Compressed:
            break;
    }
    return fail(make_error(state.path, "compressed clusters are not supported"));
}

ExtentKind extent_kind(ClusterKind kind) {
    switch (kind) {
        case ClusterKind::Zero:
        case ClusterKind::ZeroAllocated:
            return ExtentKind::Zero;
        case ClusterKind::Unallocated:
            return ExtentKind::Backing;
        case ClusterKind::Data:
        case ClusterKind::Compressed:
            return ExtentKind::Data;
    }
    return ExtentKind::Data;
}

}  // namespace

Qcow2Image::Qcow2Image(std::unique_ptr<State> state) : m_state(std::move(state)) {}

Qcow2Image::~Qcow2Image() {
    // Close is a flush: callers that care about errors call flush() first.
    if (m_state && m_state->access == Access::ReadWrite)
        (void)flush();
    // The worker must stop before the descriptors and caches it uses go.
    if (m_state) {
        m_state->meta->set_before_flush(nullptr);
        m_state->write_behind.reset();
    }
}

uint64_t Qcow2Image::size() const {
    return m_state->header.size;
}
const std::string& Qcow2Image::name() const {
    return m_state->path;
}
bool Qcow2Image::read_only() const {
    return m_state->access == Access::ReadOnly;
}
uint32_t Qcow2Image::cluster_size() const {
    return static_cast<uint32_t>(m_state->header.cluster_size());
}
const std::optional<std::string>& Qcow2Image::backing_file() const {
    return m_state->header.backing_file;
}
BlockDevice* Qcow2Image::backing() const {
    return m_state->backing.get();
}

Result<void> Qcow2Image::read_at(std::span<std::byte> buffer, uint64_t offset) {
    PV_TRY(check_range("read", offset, buffer.size()));
    State& state = *m_state;
    PV_TRY(qcow2::drain_writes(state));
    uint64_t done = 0;
    while (done < buffer.size()) {
        const uint64_t pos = offset + done;
        const qcow2::L2Table* table =
            PV_TRY(state.meta->l2_for_read(qcow2::l1_index_of(state, pos)));
        const qcow2::Run run = PV_TRY(qcow2::find_run(state, table, pos, buffer.size() - done));
        PV_TRY(read_run(state, run, buffer.subspan(done, run.length), pos));
        done += run.length;
    }
    return {};
}

Result<std::vector<Extent>> Qcow2Image::map(uint64_t offset, uint64_t length) {
    PV_TRY(check_range("map", offset, length));
    State& state = *m_state;
    std::vector<Extent> extents;
    uint64_t done = 0;
    while (done < length) {
        const uint64_t pos = offset + done;
        const qcow2::L2Table* table =
            PV_TRY(state.meta->l2_for_read(qcow2::l1_index_of(state, pos)));
        const qcow2::Run run = PV_TRY(qcow2::find_run(state, table, pos, length - done));
        const ExtentKind kind = extent_kind(run.kind);
        if (!extents.empty() && extents.back().kind == kind)
            extents.back().length += run.length;
        else
            extents.push_back(Extent{pos, run.length, kind});
        done += run.length;
    }
    return extents;
}

Result<std::vector<Qcow2Image::HostExtent>> Qcow2Image::data_extents(uint64_t offset,
                                                                     uint64_t length) {
    PV_TRY(check_range("map", offset, length));
    State& state = *m_state;
    PV_TRY(qcow2::drain_writes(state));  // the file must hold what the tables say
    std::vector<HostExtent> extents;
    for (uint64_t done = 0; done < length;) {
        const uint64_t pos = offset + done;
        const qcow2::L2Table* table =
            PV_TRY(state.meta->l2_for_read(qcow2::l1_index_of(state, pos)));
        const qcow2::Run run = PV_TRY(qcow2::find_run(state, table, pos, length - done));
        if (run.kind == ClusterKind::Compressed)
            return fail(make_error("map " + state.path, "compressed clusters are not supported"));
        if (run.kind == ClusterKind::Data) {
            if (!extents.empty() && extents.back().offset + extents.back().length == pos &&
                extents.back().host_offset + extents.back().length == run.host)
                extents.back().length += run.length;
            else
                extents.push_back(HostExtent{pos, run.length, run.host});
        }
        done += run.length;
    }
    return extents;
}

int Qcow2Image::file_descriptor() const {
    return m_state->fd.get();
}

Result<void> Qcow2Image::flush() {
    if (m_state->access == Access::ReadOnly)
        return {};
    PV_TRY(qcow2::drain_writes(*m_state));
    PV_TRY(m_state->meta->flush(m_state->data_pending));
    m_state->data_pending = false;
    return {};
}

Result<void> Qcow2Image::discard(uint64_t offset, uint64_t length) {
    // Keeping the clusters is a valid discard (contents stay stable) and
    // never frees anything a crash could leave half-updated.
    return check_range("discard on", offset, length);
}

}  // namespace pv::img
