#include "patcher/sandbox/unix_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

#include <fmt/format.h>

namespace pv::sandbox {

Result<Fd> listen_on(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof(address.sun_path))
        return fail(make_error("listen on " + path, "socket path too long"));
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listener.valid())
        return fail(errno_error("create socket " + path));
    if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0)
        return fail(errno_error("bind " + path));
    if (::chmod(path.c_str(), 0600) != 0 || ::listen(listener.get(), 1) != 0)
        return fail(errno_error("listen on " + path));
    return listener;
}

bool connected_by(int stream, pid_t expected) {
    ucred peer{};
    socklen_t length = sizeof(peer);
    return ::getsockopt(stream, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 &&
           peer.pid == expected;
}

Result<Fd> accept_child(const ChildConnection& connection,
                        const std::function<Result<void>()>& child_ended) {
    const auto until = std::chrono::steady_clock::now() + connection.timeout;
    for (;;) {
        Fd stream(::accept4(connection.listener, nullptr, nullptr, SOCK_CLOEXEC));
        if (stream.valid() && connected_by(stream.get(), connection.child))
            return stream;
        if (!stream.valid() && errno != EAGAIN && errno != EINTR)
            return fail(errno_error("accept the agent on " + connection.socket_path));
        PV_TRY(child_ended());
        if (std::chrono::steady_clock::now() >= until)
            return fail(make_error("start the agent",
                                   fmt::format("it did not connect within {} ms; see {}",
                                               connection.timeout.count(), connection.log_path)));
        pollfd watched[2] = {{connection.listener, POLLIN, 0}, {connection.child_fd, POLLIN, 0}};
        (void)::poll(watched, connection.child_fd >= 0 ? 2 : 1, 50);
    }
}

}  // namespace pv::sandbox
