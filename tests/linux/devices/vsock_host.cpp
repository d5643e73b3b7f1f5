#include "vsock_host.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

namespace pv::vmm::test {

namespace {

constexpr size_t kChunk = 64 * 1024;

sockaddr_un address_of(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof(address.sun_path) - 1);
    return address;
}

// Milliseconds until DEADLINE for poll(), at least 0.
int milliseconds_until(Deadline deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
}

// Waits for EVENTS on FD until DEADLINE: the events seen, 0 at the deadline.
short wait_for(int fd, short events, Deadline deadline) {
    for (;;) {
        pollfd waiting{fd, events, 0};
        const int ready = ::poll(&waiting, 1, milliseconds_until(deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        return ready > 0 ? waiting.revents : 0;
    }
}

void make_nonblocking(const Fd& stream) {
    ::fcntl(stream.get(), F_SETFL, ::fcntl(stream.get(), F_GETFL) | O_NONBLOCK);
}

std::string describe(const char* what, int error) {
    return std::string(what) + ": " + std::strerror(error);
}

// "CONNECT PORT\n" on a fresh connection to UDS; the stream if "OK ..." came back.
Fd try_connect(const std::string& uds, uint32_t port, Deadline deadline) {
    Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_un address = address_of(uds);
    if (::connect(client.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0)
        return Fd();
    const std::string request = "CONNECT " + std::to_string(port) + "\n";
    if (::send(client.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size()))
        return Fd();
    // The answer is read a byte at a time: what follows it is the guest's.
    std::string line;
    char byte = 0;
    while (wait_for(client.get(), POLLIN, deadline) != 0 && ::read(client.get(), &byte, 1) == 1 &&
           byte != '\n')
        line += byte;
    return byte == '\n' && line.starts_with("OK ") ? std::move(client) : Fd();
}

}  // namespace

Fd listen_unix(const std::string& path, int backlog) {
    Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_un address = address_of(path);
    if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listener.get(), backlog) != 0) {
        ADD_FAILURE() << describe(("listen on " + path).c_str(), errno);
        return Fd();
    }
    return listener;
}

Fd accept_before(const Fd& listener, Deadline deadline, const StillRunning& running) {
    // In slices of a second, so a VM that died is noticed soon.
    while (Clock::now() < deadline) {
        if (wait_for(listener.get(), POLLIN, std::min(deadline, after(std::chrono::seconds(1)))))
            return Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (running && !running())
            break;
    }
    return Fd();
}

Fd connect_to_guest(const std::string& uds, uint32_t port, Deadline deadline,
                    const StillRunning& running) {
    while (Clock::now() < deadline && (!running || running())) {
        if (Fd stream = try_connect(uds, port, deadline); stream.valid())
            return stream;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Fd();
}

pid_t peer_pid(const Fd& stream) {
    ucred credentials{};
    socklen_t length = sizeof(credentials);
    if (::getsockopt(stream.get(), SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0)
        return -1;
    return credentials.pid;
}

Exchanged exchange(const Fd& stream, std::string_view send, Deadline deadline) {
    make_nonblocking(stream);
    Exchanged result;
    size_t sent = 0;
    bool writing = true;
    bool reading = true;
    std::vector<char> buffer(kChunk);
    while (writing || reading) {
        if (writing && sent == send.size()) {
            ::shutdown(stream.get(), SHUT_WR);
            writing = false;
            continue;
        }
        const short events =
            wait_for(stream.get(), (reading ? POLLIN : 0) | (writing ? POLLOUT : 0), deadline);
        if (events == 0) {
            result.error = "timed out having sent " + std::to_string(sent) + " and received " +
                           std::to_string(result.received.size()) + " bytes";
            return result;
        }
        if (writing && (events & (POLLOUT | POLLERR | POLLHUP))) {
            const ssize_t count = ::send(stream.get(), send.data() + sent,
                                         std::min(kChunk, send.size() - sent), MSG_NOSIGNAL);
            if (count < 0 && errno != EAGAIN)
                return result.error = describe("send", errno), result;
            sent += static_cast<size_t>(std::max<ssize_t>(count, 0));
        }
        if (reading && (events & (POLLIN | POLLERR | POLLHUP))) {
            const ssize_t count = ::read(stream.get(), buffer.data(), buffer.size());
            if (count < 0 && errno != EAGAIN)
                return result.error = describe("read", errno), result;
            reading = count != 0;
            result.received.append(buffer.data(), static_cast<size_t>(std::max<ssize_t>(count, 0)));
        }
    }
    result.finished = true;
    return result;
}

Exchanged echo(const Fd& stream, Deadline deadline) {
    make_nonblocking(stream);
    Exchanged result;
    std::string pending;  // read, not yet sent back; only read again once empty
    bool reading = true;
    std::vector<char> buffer(kChunk);
    while (reading || !pending.empty()) {
        const short events = wait_for(stream.get(), pending.empty() ? POLLIN : POLLOUT, deadline);
        if (events == 0) {
            result.error =
                "timed out having echoed " + std::to_string(result.received.size()) + " bytes";
            return result;
        }
        if (!pending.empty()) {
            const ssize_t count =
                ::send(stream.get(), pending.data(), pending.size(), MSG_NOSIGNAL);
            if (count < 0 && errno != EAGAIN)
                return result.error = describe("send", errno), result;
            pending.erase(0, static_cast<size_t>(std::max<ssize_t>(count, 0)));
            continue;
        }
        const ssize_t count = ::read(stream.get(), buffer.data(), buffer.size());
        if (count < 0 && errno != EAGAIN)
            return result.error = describe("read", errno), result;
        reading = count != 0;
        pending.assign(buffer.data(), static_cast<size_t>(std::max<ssize_t>(count, 0)));
        result.received += pending;
    }
    ::shutdown(stream.get(), SHUT_WR);
    result.finished = true;
    return result;
}

Pushed push_until_stalled(const Fd& stream, uint64_t limit, std::chrono::seconds quiet,
                          Deadline deadline) {
    make_nonblocking(stream);
    const std::string filler(kChunk, 'p');
    Pushed pushed;
    auto last_progress = Clock::now();
    while (pushed.bytes < limit) {
        const Deadline give_up = std::min(deadline, last_progress + quiet);
        if (Clock::now() >= give_up)
            break;
        // Tried without waiting for POLLOUT, which a Unix socket reports
        // only below a quarter of its send buffer: every byte it would take.
        const ssize_t count =
            ::send(stream.get(), filler.data(),
                   std::min<uint64_t>(filler.size(), limit - pushed.bytes), MSG_NOSIGNAL);
        if (count > 0) {
            pushed.bytes += static_cast<uint64_t>(count);
            last_progress = Clock::now();
        } else if (errno == EAGAIN) {
            (void)wait_for(stream.get(), POLLOUT,
                           std::min(give_up, Clock::now() + std::chrono::milliseconds(50)));
        } else {
            pushed.error = describe("send", errno);
            break;
        }
    }
    return pushed;
}

bool closes_before(const Fd& stream, Deadline deadline) {
    make_nonblocking(stream);
    std::vector<char> buffer(kChunk);
    while (wait_for(stream.get(), POLLIN, deadline) != 0) {
        const ssize_t count = ::read(stream.get(), buffer.data(), buffer.size());
        if (count == 0 || (count < 0 && errno != EAGAIN))
            return true;
    }
    return false;
}

std::string random_bytes(size_t size, uint64_t seed) {
    std::mt19937_64 generator(seed);
    std::string bytes(size, '\0');
    for (size_t index = 0; index < size; index += 8) {
        const uint64_t value = generator();
        std::memcpy(bytes.data() + index, &value, std::min<size_t>(8, size - index));
    }
    return bytes;
}

uint64_t status_kib(pid_t pid, const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with(field + ":"))
            return std::stoull(line.substr(field.size() + 1));
    return 0;
}

}  // namespace pv::vmm::test
