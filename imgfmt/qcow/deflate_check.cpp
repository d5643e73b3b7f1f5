#include "imgfmt/qcow/deflate_check.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

#include "common/fd.hpp"

namespace pv::img::qcow {

namespace {

// Owns an inflate stream (window bits -12: raw deflate with QEMU's 4 KiB
// window, as qcow2_decompress and block/qcow.c's decompress_buffer use).
class Inflater {
  public:
    Inflater() { m_ready = ::inflateInit2(&m_stream, -12) == Z_OK; }
    Inflater(const Inflater&) = delete;
    Inflater& operator=(const Inflater&) = delete;
    ~Inflater() {
        if (m_ready)
            ::inflateEnd(&m_stream);
    }
    [[nodiscard]] bool ready() const { return m_ready; }
    z_stream& stream() { return m_stream; }

  private:
    z_stream m_stream{};
    bool m_ready = false;
};

}  // namespace

Result<void> check_fills_cluster(int fd, uint64_t file_size, const Cluster& cluster,
                                 uint64_t cluster_size, const std::string& what) {
    // ClusterMap checked that the data starts inside the file.
    std::vector<std::byte> compressed(cluster.compressed_size, std::byte{0});
    const uint64_t stored = std::min(cluster.compressed_size, file_size - cluster.host_offset);
    PV_TRY(pread_all(fd, compressed.data(), stored, cluster.host_offset, what));
    Inflater inflater;
    if (!inflater.ready())
        return fail(make_error(what, "cannot set up zlib"));
    z_stream& stream = inflater.stream();
    stream.next_in = reinterpret_cast<Bytef*>(compressed.data());
    stream.avail_in = static_cast<uInt>(compressed.size());
    // The output only needs counting: a small buffer, refilled, never read.
    std::array<Bytef, 4096> scratch{};
    uint64_t produced = 0;
    int status = Z_OK;
    while (status == Z_OK && produced < cluster_size) {
        const uint64_t want = std::min<uint64_t>(scratch.size(), cluster_size - produced);
        stream.next_out = scratch.data();
        stream.avail_out = static_cast<uInt>(want);
        status = ::inflate(&stream, Z_NO_FLUSH);
        produced += want - stream.avail_out;
        if (status == Z_BUF_ERROR && stream.avail_out == 0)
            status = Z_OK;  // the output buffer was full: go on
    }
    // A full cluster, whether or not the stream says it ended there (QEMU
    // accepts both); anything shorter, or a corrupt stream, is refused.
    const bool ok = produced == cluster_size && (status == Z_OK || status == Z_STREAM_END);
    if (!ok)
        return fail(make_error(what, "compressed cluster does not inflate to a whole cluster"));
    return {};
}

}  // namespace pv::img::qcow
