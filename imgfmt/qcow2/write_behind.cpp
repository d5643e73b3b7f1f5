#include "imgfmt/qcow2/write_behind.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/fd.hpp"

namespace pv::img::qcow2 {

void WriteBehind::Free::operator()(std::byte* memory) const {
    std::free(memory);
}

WriteBehind::WriteBehind(int direct_fd, std::string path)
    : m_fd(direct_fd), m_path(std::move(path)) {
    for (size_t i = 0; i < kWorkers; ++i)
        m_workers.emplace_back([this] { run(); });
}

WriteBehind::~WriteBehind() {
    (void)drain();
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
    }
    m_changed.notify_all();
    for (std::thread& worker : m_workers)
        worker.join();
}

bool WriteBehind::can_start() const {
    if (m_queue.empty())
        return false;
    const uint64_t begin = m_queue.front().host;
    const uint64_t end = begin + m_queue.front().length;
    for (const auto& [busy_begin, busy_end] : m_in_flight)
        if (begin < busy_end && busy_begin < end)
            return false;
    return true;
}

void WriteBehind::run() {
    std::unique_lock lock(m_mutex);
    for (;;) {
        m_changed.wait(lock, [this] { return (m_stop && m_queue.empty()) || can_start(); });
        if (m_queue.empty())
            return;
        Buffer buffer = std::move(m_queue.front());
        m_queue.pop_front();
        const std::pair<uint64_t, uint64_t> range{buffer.host, buffer.host + buffer.length};
        m_in_flight.push_back(range);
        lock.unlock();
        auto written =
            pwrite_all(m_fd, buffer.memory.get(), buffer.length, buffer.host, "write " + m_path);
        lock.lock();
        if (!written && !m_error)
            m_error = written.error();
        std::erase(m_in_flight, range);
        m_free.push_back(std::move(buffer));
        m_changed.notify_all();
    }
}

void WriteBehind::queue_filling() {
    if (m_filling && m_filling->length > 0) {
        m_queue.push_back(std::move(*m_filling));
        m_changed.notify_all();
    } else if (m_filling) {
        m_free.push_back(std::move(*m_filling));
    }
    m_filling.reset();
}

// Takes a free buffer (allocating up to kBuffers, then waiting for the
// worker to return one) and makes it the one being filled at HOST.
Result<void> WriteBehind::start_buffer(std::unique_lock<std::mutex>& lock, uint64_t host) {
    queue_filling();
    if (m_free.empty() && m_allocated < kBuffers) {
        void* memory = std::aligned_alloc(kAlignment, kBufferBytes);
        if (memory == nullptr)
            return fail(make_error("write " + m_path, "out of memory for write buffers"));
        m_free.push_back(Buffer{std::unique_ptr<std::byte, Free>(static_cast<std::byte*>(memory))});
        ++m_allocated;
    }
    m_changed.wait(lock, [this] { return !m_free.empty(); });
    m_filling = std::move(m_free.back());
    m_free.pop_back();
    m_filling->host = host;
    m_filling->length = 0;
    return {};
}

Result<void> WriteBehind::submit(const iovec* iov, int count, uint64_t host) {
    std::unique_lock lock(m_mutex);
    if (m_error)
        return fail(*m_error);
    for (int i = 0; i < count; ++i) {
        const auto* bytes = static_cast<const std::byte*>(iov[i].iov_base);
        size_t left = iov[i].iov_len;
        while (left > 0) {
            if (!m_filling || m_filling->host + m_filling->length != host ||
                m_filling->length == kBufferBytes)
                PV_TRY(start_buffer(lock, host));
            const size_t take = std::min(left, kBufferBytes - m_filling->length);
            std::memcpy(m_filling->memory.get() + m_filling->length, bytes, take);
            m_filling->length += take;
            bytes += take;
            left -= take;
            host += take;
        }
    }
    if (m_filling && m_filling->length == kBufferBytes)
        queue_filling();
    return {};
}

Result<void> WriteBehind::drain() {
    std::unique_lock lock(m_mutex);
    queue_filling();
    m_changed.wait(lock, [this] { return m_queue.empty() && m_in_flight.empty(); });
    if (m_error) {
        Error error = std::move(*m_error);
        m_error.reset();
        return fail(std::move(error));
    }
    return {};
}

bool WriteBehind::idle() {
    std::lock_guard lock(m_mutex);
    return m_queue.empty() && m_in_flight.empty() && (!m_filling || m_filling->length == 0);
}

}  // namespace pv::img::qcow2
