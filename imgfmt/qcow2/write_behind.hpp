#pragma once

// Write-behind for large data writes through an O_DIRECT descriptor: the
// caller's bytes are copied into aligned buffers and a worker thread writes
// them while the caller produces the next ones (the commit path reads its
// source and writes us in turn; overlapping the two is what QEMU's
// coroutines do for qemu-img convert), several writes in flight at once.
// Host-contiguous submissions are merged into writes of up to kBufferBytes;
// a queued write never starts while an overlapping one is in flight, so
// writes to the same clusters land in submission order. Data that sits in these
// buffers is referenced by no on-disk metadata until drain() has returned,
// so losing it in a crash loses only unflushed writes.

#include <sys/uio.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"

namespace pv::img::qcow2 {

class WriteBehind {
  public:
    static constexpr size_t kAlignment = 4096;
    static constexpr size_t kBufferBytes = 4 << 20;
    static constexpr size_t kBuffers = 8;
    static constexpr size_t kWorkers = 3;

    WriteBehind(int direct_fd, std::string path);
    ~WriteBehind();
    WriteBehind(const WriteBehind&) = delete;
    WriteBehind& operator=(const WriteBehind&) = delete;

    // Queues the iovecs for host offset HOST (both kAlignment-aligned).
    // Fails with the error of an earlier queued write, if one failed.
    [[nodiscard]] Result<void> submit(const iovec* iov, int count, uint64_t host);
    // Waits until every queued write is on the file; returns (and clears)
    // the first error of a queued write.
    [[nodiscard]] Result<void> drain();
    [[nodiscard]] bool idle();

  private:
    struct Free {
        void operator()(std::byte* memory) const;
    };
    struct Buffer {
        std::unique_ptr<std::byte, Free> memory;
        uint64_t host = 0;
        size_t length = 0;
    };

    void run();
    [[nodiscard]] bool can_start() const;
    [[nodiscard]] Result<void> start_buffer(std::unique_lock<std::mutex>& lock, uint64_t host);
    void queue_filling();

    int m_fd;
    std::string m_path;
    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::vector<Buffer> m_free;
    size_t m_allocated = 0;
    std::deque<Buffer> m_queue;
    std::optional<Buffer> m_filling;
    std::vector<std::pair<uint64_t, uint64_t>> m_in_flight;  // [begin, end) host ranges
    bool m_stop = false;
    std::optional<Error> m_error;
    std::vector<std::thread> m_workers;
};

}  // namespace pv::img::qcow2
