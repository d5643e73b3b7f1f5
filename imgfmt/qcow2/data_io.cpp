// Writing guest data into host clusters. Large cluster-aligned writes (the
// commit path writes 1 MiB and more at a time) bypass the page cache with
// O_DIRECT through a write-behind worker, as QEMU does with cache=none:
// buffered writeback of hundreds of megabytes followed by fdatasync is
// several times slower on virtual disks.
// Small writes stay buffered (the virtio-blk path), and metadata always is.
// Mixing the two is coherent: the kernel writes back and invalidates cached
// pages of a range before and after a direct write to it.

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "imgfmt/qcow2/state.hpp"

namespace pv::img::qcow2 {
namespace {

constexpr uint64_t kDirectAlignment = WriteBehind::kAlignment;
constexpr uint64_t kDirectMinimum = 256 << 10;

Result<void> pwritev_all(const Qcow2Image::State& state, iovec* iov, int count, uint64_t offset) {
    while (count > 0) {
        const ssize_t done = ::pwritev(state.fd.get(), iov, count, static_cast<off_t>(offset));
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return fail(
                errno_error("write " + state.path + " at offset " + std::to_string(offset)));
        }
        offset += static_cast<uint64_t>(done);
        auto left = static_cast<size_t>(done);
        while (count > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            ++iov;
            --count;
        }
        if (count > 0) {
            iov->iov_base = static_cast<char*>(iov->iov_base) + left;
            iov->iov_len -= left;
        }
    }
    return {};
}

}  // namespace

void open_direct(Qcow2Image::State& state) {
    // Filesystems without O_DIRECT (tmpfs) keep every write buffered.
    const int fd = ::open(state.path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd < 0)
        return;
    state.direct_fd = Fd(fd);
    state.write_behind = std::make_unique<WriteBehind>(fd, state.path);
    // No L2 or L1 entry may reach the file before the data it points to.
    WriteBehind* write_behind = state.write_behind.get();
    state.meta->set_before_flush([write_behind] { return write_behind->drain(); });
}

Result<void> drain_writes(Qcow2Image::State& state) {
    if (state.write_behind && !state.write_behind->idle())
        return state.write_behind->drain();
    return {};
}

Result<void> write_host(Qcow2Image::State& state, iovec* iov, int count, uint64_t host) {
    uint64_t total = 0;
    for (int i = 0; i < count; ++i)
        total += iov[i].iov_len;
    state.data_pending = true;
    if (state.write_behind && total >= kDirectMinimum && host % kDirectAlignment == 0 &&
        total % kDirectAlignment == 0)
        return state.write_behind->submit(iov, count, host);
    // A buffered write must not be overtaken by an older queued one.
    PV_TRY(drain_writes(state));
    return pwritev_all(state, iov, count, host);
}

}  // namespace pv::img::qcow2
