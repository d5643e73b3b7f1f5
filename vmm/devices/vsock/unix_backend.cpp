#include "vmm/devices/vsock/unix_backend.hpp"

#include <sys/stat.h>
#include <sys/un.h>

#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <deque>

#include "vmm/devices/vsock/connection.hpp"

namespace pv::vmm::vsock {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;
using Endpoint = asio::local::stream_protocol::endpoint;

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// "CONNECT 4294967295\n" is 19 bytes; anything much longer is not a handshake.
constexpr size_t kMaxHandshake = 32;

// "CONNECT <port>\n" with a decimal u32 port, nothing else.
std::optional<uint32_t> parse_connect(std::string_view line) {
    constexpr std::string_view prefix = "CONNECT ";
    if (!line.starts_with(prefix) || !line.ends_with('\n'))
        return std::nullopt;
    line.remove_prefix(prefix.size());
    line.remove_suffix(1);
    uint32_t port = 0;
    auto [end, error] = std::from_chars(line.data(), line.data() + line.size(), port);
    if (error != std::errc() || end != line.data() + line.size() || line.empty())
        return std::nullopt;
    return port;
}

// Bytes waiting for the socket. An async write points into the front chunk
// while receive() appends, so appending must never move stored bytes (a
// single growing vector would reallocate under the write).
class ChunkQueue {
  public:
    [[nodiscard]] bool empty() const { return m_chunks.empty(); }
    // The unwritten rest of the oldest chunk.
    [[nodiscard]] std::span<const uint8_t> front() const {
        return std::span<const uint8_t>(m_chunks.front()).subspan(m_offset);
    }
    void append(std::span<const uint8_t> data) {
        if (!data.empty())
            m_chunks.emplace_back(data.begin(), data.end());
    }
    void drop(size_t count) {
        m_offset += count;
        if (m_offset >= m_chunks.front().size()) {
            m_chunks.pop_front();
            m_offset = 0;
        }
    }

  private:
    std::deque<std::vector<uint8_t>> m_chunks;
    size_t m_offset = 0;
};

bool fits_sun_path(const std::string& path) {
    return !path.empty() && path.size() < sizeof(sockaddr_un::sun_path);
}

}  // namespace

struct UnixSocketBackend::Stream {
    explicit Stream(asio::io_context& events) : socket(events), handshake(kMaxHandshake) {}

    Socket socket;
    ConnectionId id = 0;
    uint32_t host_port = 0;       // host-initiated: the port named in "OK"
    bool bridged = false;         // bytes flow both ways
    bool reading = false;         // an async read is in flight
    bool writing = false;         // an async write is in flight
    bool end_of_file = false;     // the host peer shut down its side
    bool guest_finished = false;  // shut down our write side once drained
    bool write_shut = false;
    bool closing = false;  // the device forgot it; drain and close
    asio::streambuf handshake;
    PendingBytes early;   // bytes that followed the CONNECT line
    ChunkQueue outgoing;  // guest → host, bounded by the device's buf_alloc
    std::vector<uint8_t> read_buffer = std::vector<uint8_t>(kReadChunk);
};

Result<std::unique_ptr<UnixSocketBackend>> UnixSocketBackend::create(asio::io_context& events,
                                                                     std::string uds_path) {
    // "<uds>_<port>" must fit into sun_path as well.
    if (!fits_sun_path(uds_path + "_4294967295"))
        return fail(make_error("listen on " + uds_path, "path too long for a Unix socket"));
    struct stat existing {};
    if (::lstat(uds_path.c_str(), &existing) == 0)
        return fail(make_error("listen on " + uds_path, "path exists"));
    std::unique_ptr<UnixSocketBackend> backend(new UnixSocketBackend(events, uds_path));
    boost::system::error_code error;
    auto& acceptor = backend->m_acceptor;
    acceptor.open(asio::local::stream_protocol(), error);
    if (!error)
        acceptor.bind(Endpoint(uds_path), error);
    if (!error)
        acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error)
        return fail(errno_error("listen on " + uds_path, error.value()));
    backend->accept_next();
    return backend;
}

UnixSocketBackend::UnixSocketBackend(asio::io_context& events, std::string uds_path)
    : m_events(events), m_uds_path(std::move(uds_path)), m_acceptor(events) {}

UnixSocketBackend::~UnixSocketBackend() {
    boost::system::error_code ignored;
    if (m_acceptor.is_open()) {
        m_acceptor.close(ignored);
        ::unlink(m_uds_path.c_str());
    }
    for (auto& [id, stream] : m_streams)
        stream->socket.close(ignored);
}

UnixSocketBackend::StreamPtr UnixSocketBackend::find(ConnectionId id) const {
    auto it = m_streams.find(id);
    return it == m_streams.end() ? nullptr : it->second;
}

void UnixSocketBackend::accept_next() {
    auto stream = std::make_shared<Stream>(m_events);
    m_acceptor.async_accept(stream->socket, [this, alive = std::weak_ptr(m_alive),
                                             stream](const boost::system::error_code& error) {
        if (!alive.lock() || error == asio::error::operation_aborted)
            return;
        if (!error)
            read_handshake(stream);
        accept_next();
    });
}

void UnixSocketBackend::read_handshake(StreamPtr stream) {
    asio::async_read_until(stream->socket, stream->handshake, '\n',
                           [this, alive = std::weak_ptr(m_alive), stream](
                               const boost::system::error_code& error, size_t length) {
                               if (!alive.lock())
                                   return;
                               if (error) {
                                   stream->socket.close();  // EOF, error or a line too long
                                   return;
                               }
                               handle_handshake(stream, length);
                           });
}

void UnixSocketBackend::handle_handshake(const StreamPtr& stream, size_t line_length) {
    const auto data = stream->handshake.data();
    const std::string buffered(asio::buffers_begin(data), asio::buffers_end(data));
    const auto port = parse_connect(std::string_view(buffered).substr(0, line_length));
    const auto outgoing = port ? m_host->connect_guest(*port) : std::nullopt;
    if (!outgoing) {
        stream->socket.close();
        return;
    }
    stream->id = outgoing->id;
    stream->host_port = outgoing->host_port;
    const auto* rest = reinterpret_cast<const uint8_t*>(buffered.data()) + line_length;
    stream->early.append({rest, buffered.size() - line_length});
    m_streams.emplace(stream->id, stream);
}

void UnixSocketBackend::guest_answered(ConnectionId id, Answer answer) {
    StreamPtr stream = find(id);
    if (!stream)
        return;
    if (answer == Answer::Refused) {
        finish(stream);
        return;
    }
    // Posted: the device calls this with its lock held.
    asio::post(m_events, [this, alive = std::weak_ptr(m_alive), stream] {
        if (alive.lock() && !stream->closing)
            send_ok(stream);
    });
}

void UnixSocketBackend::send_ok(StreamPtr stream) {
    auto line = std::make_shared<std::string>("OK " + std::to_string(stream->host_port) + "\n");
    asio::async_write(stream->socket, asio::buffer(*line),
                      [this, alive = std::weak_ptr(m_alive), stream, line](
                          const boost::system::error_code& error, size_t) {
                          if (!alive.lock() || stream->closing)
                              return;
                          if (error)
                              return fail_stream(stream);
                          start_bridge(stream);
                      });
}

void UnixSocketBackend::connect(ConnectionId id, uint32_t port) {
    auto stream = std::make_shared<Stream>(m_events);
    stream->id = id;
    m_streams.emplace(id, stream);
    const std::string path = m_uds_path + "_" + std::to_string(port);
    stream->socket.async_connect(Endpoint(path), [this, alive = std::weak_ptr(m_alive),
                                                  stream](const boost::system::error_code& error) {
        if (!alive.lock() || stream->closing)
            return;
        if (error) {
            m_host->connect_done(stream->id, Answer::Refused);
            return finish(stream);
        }
        m_host->connect_done(stream->id, Answer::Accepted);
        if (!stream->closing)
            start_bridge(stream);
    });
}

void UnixSocketBackend::start_bridge(const StreamPtr& stream) {
    stream->bridged = true;
    start_write(stream);
    start_read(stream);
}

void UnixSocketBackend::start_read(StreamPtr stream) {
    if (!stream->bridged || stream->reading || stream->end_of_file || stream->closing)
        return;
    // Bytes that came with the handshake go first, within the same limits.
    while (!stream->early.empty()) {
        const uint32_t capacity = m_host->send_capacity(stream->id);
        if (capacity == 0 || stream->closing)
            return;  // writable() calls again
        auto bytes = stream->early.front(capacity);
        m_host->send(stream->id, bytes);
        stream->early.drop(bytes.size());
    }
    const uint32_t capacity = m_host->send_capacity(stream->id);
    if (capacity == 0 || stream->closing)
        return;
    stream->reading = true;
    stream->socket.async_read_some(
        asio::buffer(stream->read_buffer.data(), std::min<size_t>(capacity, kReadChunk)),
        [this, alive = std::weak_ptr(m_alive), stream](const boost::system::error_code& error,
                                                       size_t length) {
            if (!alive.lock())
                return;
            stream->reading = false;
            if (stream->closing)
                return start_write(stream);  // finishes once the drain is done
            if (error == asio::error::eof) {
                stream->end_of_file = true;
                return m_host->host_shutdown(stream->id);
            }
            if (error)
                return fail_stream(stream);
            m_host->send(stream->id, {stream->read_buffer.data(), length});
            start_read(stream);
        });
}

void UnixSocketBackend::start_write(StreamPtr stream) {
    if (!stream->bridged || stream->writing)
        return;
    if (stream->outgoing.empty()) {
        if (stream->closing)
            return finish(stream);
        if (stream->guest_finished && !stream->write_shut) {
            boost::system::error_code ignored;
            stream->socket.shutdown(Socket::shutdown_send, ignored);
            stream->write_shut = true;
        }
        return;
    }
    stream->writing = true;
    auto bytes = stream->outgoing.front();
    stream->socket.async_write_some(asio::buffer(bytes.data(), bytes.size()),
                                    [this, alive = std::weak_ptr(m_alive), stream](
                                        const boost::system::error_code& error, size_t length) {
                                        if (!alive.lock())
                                            return;
                                        stream->writing = false;
                                        if (error)
                                            return fail_stream(stream);
                                        stream->outgoing.drop(length);
                                        m_host->consumed(stream->id, static_cast<uint32_t>(length));
                                        start_write(stream);
                                    });
}

void UnixSocketBackend::receive(ConnectionId id, std::span<const uint8_t> data) {
    StreamPtr stream = find(id);
    if (!stream || stream->closing)
        return;
    stream->outgoing.append(data);
    start_write(stream);  // never completes inline, so no call back into the device
}

void UnixSocketBackend::guest_shutdown(ConnectionId id) {
    StreamPtr stream = find(id);
    if (!stream)
        return;
    stream->guest_finished = true;
    start_write(stream);
}

void UnixSocketBackend::close(ConnectionId id) {
    StreamPtr stream = find(id);
    if (!stream)
        return;
    stream->closing = true;
    // What the guest sent before it closed still reaches the host peer.
    if (!stream->bridged || (!stream->writing && stream->outgoing.empty()))
        return finish(stream);
    boost::system::error_code ignored;
    stream->socket.shutdown(Socket::shutdown_receive, ignored);
}

void UnixSocketBackend::writable(ConnectionId id) {
    StreamPtr stream = find(id);
    if (!stream)
        return;
    // Posted: the device calls this with its lock held.
    asio::post(m_events, [this, alive = std::weak_ptr(m_alive), stream] {
        if (alive.lock())
            start_read(stream);
    });
}

void UnixSocketBackend::fail_stream(const StreamPtr& stream) {
    finish(stream);
    // Also while closing: the device may hold the guest's RST for the drain.
    m_host->host_reset(stream->id);
}

void UnixSocketBackend::finish(const StreamPtr& stream) {
    stream->closing = true;
    boost::system::error_code ignored;
    stream->socket.close(ignored);
    auto it = m_streams.find(stream->id);
    if (it != m_streams.end() && it->second == stream)
        m_streams.erase(it);
}

}  // namespace pv::vmm::vsock
