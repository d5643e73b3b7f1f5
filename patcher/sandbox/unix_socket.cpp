#include "patcher/sandbox/unix_socket.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>

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

}  // namespace pv::sandbox
