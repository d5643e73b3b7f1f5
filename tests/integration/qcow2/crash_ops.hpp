#pragma once

// The operations of the crash writer, generated from a seed so that the
// crash test can replay them: which bytes each write covers and when the
// writer flushes.

#include <cstddef>
#include <cstdint>
#include <random>

namespace pv::img::test {

struct CrashOp {
    bool zeroes = false;  // write_zeroes instead of write_at
    uint64_t offset = 0;
    uint64_t length = 0;
    std::byte fill{0};  // the byte every written position gets
    bool flush_after = false;
};

class CrashOps {
  public:
    CrashOps(uint64_t seed, uint64_t disk_size, uint64_t cluster_size)
        : m_random(seed), m_size(disk_size), m_cluster(cluster_size) {}

    // Up to 2 MiB: large aligned writes take the O_DIRECT write-behind
    // path, small unaligned ones the buffered path with copy-on-write.
    static constexpr uint64_t kMaxClusters = 32;

    CrashOp next() {
        CrashOp op;
        const bool large = m_random() % 4 == 0;
        op.length =
            large ? m_cluster * (1 + m_random() % kMaxClusters) : 1 + m_random() % (4 * m_cluster);
        op.offset = m_random() % (m_size - op.length);
        if (large)
            op.offset -= op.offset % m_cluster;
        op.zeroes = m_random() % 8 == 0;
        op.fill = op.zeroes ? std::byte{0} : static_cast<std::byte>(1 + m_count % 255);
        op.flush_after = m_random() % 16 == 0;
        ++m_count;
        return op;
    }

  private:
    std::mt19937_64 m_random;
    uint64_t m_size;
    uint64_t m_cluster;
    uint64_t m_count = 0;
};

}  // namespace pv::img::test
