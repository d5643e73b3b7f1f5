#include "agent/transport.hpp"

#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace pv::agent {

Result<Channel> Channel::connect_unix(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path)
        return fail(make_error("connect " + path, "socket path too long"));
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return fail(errno_error("create Unix socket"));
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
        return fail(errno_error("connect " + path));
    return Channel(std::move(fd));
}

Result<Channel> Channel::connect_vsock(uint32_t port) {
    sockaddr_vm address{};
    address.svm_family = AF_VSOCK;
    address.svm_cid = VMADDR_CID_HOST;
    address.svm_port = port;
    int last_errno = 0;
    for (int attempt = 0; attempt < 50; ++attempt) {
        Fd fd(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd.valid())
            return fail(errno_error("create vsock socket"));
        if (connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0)
            return Channel(std::move(fd));
        last_errno = errno;
        usleep(100 * 1000);
    }
    return fail(errno_error("connect to vsock host port " + std::to_string(port), last_errno));
}

Result<void> Channel::send(const wire::Envelope& envelope) {
    const std::string frame = PV_TRY(proto::encode_frame(envelope));
    size_t done = 0;
    while (done < frame.size()) {
        const ssize_t sent =
            ::send(m_fd.get(), frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return fail(errno_error("send to host"));
        }
        done += static_cast<size_t>(sent);
    }
    return {};
}

Result<wire::Envelope> Channel::receive() {
    char buffer[65536];
    for (;;) {
        auto popped = m_decoder.pop();
        if (!popped)
            return fail(popped.error());
        if (*popped)
            return std::move(**popped);
        const ssize_t got = read(m_fd.get(), buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return fail(errno_error("receive from host"));
        if (got == 0)
            return fail(m_decoder.end_of_stream_error());
        PV_TRY(m_decoder.feed(buffer, static_cast<size_t>(got)));
    }
}

Result<uint32_t> port_from_cmdline(std::string_view cmdline) {
    constexpr std::string_view key = "pv.port=";
    size_t position = 0;
    while ((position = cmdline.find(key, position)) != std::string_view::npos) {
        if (position == 0 || cmdline[position - 1] == ' ') {
            uint64_t port = 0;
            size_t i = position + key.size();
            const size_t start = i;
            while (i < cmdline.size() && cmdline[i] >= '0' && cmdline[i] <= '9' &&
                   port <= 0xffffffff)
                port = port * 10 + static_cast<uint64_t>(cmdline[i++] - '0');
            const bool ends = i == cmdline.size() || cmdline[i] == ' ' || cmdline[i] == '\n';
            if (i > start && ends && port > 0 && port <= 0xffffffff)
                return static_cast<uint32_t>(port);
            return fail(
                make_error("read pv.port from the kernel command line", "not a port number"));
        }
        position += key.size();
    }
    return fail(make_error("read pv.port from the kernel command line", "pv.port=N is missing"));
}

}  // namespace pv::agent
