#include "bench/boot/agent_hello.hpp"

// clang-format off
#include <sys/socket.h>
#include <linux/vm_sockets.h>
// clang-format on
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

namespace pv::bench {

namespace {

Result<Fd> listening_socket(int family, const sockaddr* address, socklen_t size,
                            const std::string& where) {
    Fd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        return fail(errno_error("socket for " + where));
    if (bind(fd.get(), address, size) != 0)
        return fail(errno_error("bind " + where));
    if (::listen(fd.get(), 1) != 0)
        return fail(errno_error("listen on " + where));
    return fd;
}

}  // namespace

Result<HelloListener> HelloListener::listen(const std::string& where) {
    if (where.rfind("unix:", 0) == 0) {
        const std::string path = where.substr(5);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        if (path.empty() || path.size() >= sizeof address.sun_path)
            return fail(Error{"listen", "bad Unix socket path '" + path + "'", EINVAL});
        std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
        Fd fd = PV_TRY(listening_socket(AF_UNIX, reinterpret_cast<sockaddr*>(&address),
                                        sizeof address, where));
        return HelloListener(std::move(fd), path);
    }
    if (where.rfind("vsock:", 0) == 0) {
        sockaddr_vm address{};
        address.svm_family = AF_VSOCK;
        address.svm_cid = VMADDR_CID_ANY;
        try {
            address.svm_port = static_cast<unsigned>(std::stoul(where.substr(6)));
        } catch (const std::exception&) {
            return fail(Error{"listen", "bad vsock port in '" + where + "'", EINVAL});
        }
        Fd fd = PV_TRY(listening_socket(AF_VSOCK, reinterpret_cast<sockaddr*>(&address),
                                        sizeof address, where));
        return HelloListener(std::move(fd), "");
    }
    return fail(Error{"listen", "'" + where + "' is neither unix:PATH nor vsock:PORT", EINVAL});
}

HelloListener::~HelloListener() {
    if (!m_unix_path.empty() && m_listening.valid())
        unlink(m_unix_path.c_str());
}

int HelloListener::fd() const {
    if (m_done)
        return -1;
    return m_connection.valid() ? m_connection.get() : m_listening.get();
}

Result<std::optional<std::string>> HelloListener::on_readable() {
    if (!m_connection.valid()) {
        m_connection = Fd(accept4(m_listening.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!m_connection.valid())
            return fail(errno_error("accept the agent's connection"));
        wire::Envelope request;
        request.set_request_id(1);
        request.mutable_hello()->set_major(proto::kProtocolMajor);
        request.mutable_hello()->set_minor(proto::kProtocolMinor);
        const std::string frame = PV_TRY(proto::encode_frame(request));
        // A few dozen bytes on a fresh stream: one send takes them all.
        if (send(m_connection.get(), frame.data(), frame.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(frame.size()))
            return fail(errno_error("send Hello to the agent"));
        return std::nullopt;
    }
    char buffer[4096];
    const ssize_t got = read(m_connection.get(), buffer, sizeof buffer);
    if (got < 0)
        return fail(errno_error("read the agent's reply"));
    if (got == 0)
        return fail(m_decoder.end_of_stream_error());
    PV_TRY(m_decoder.feed(buffer, static_cast<size_t>(got)));
    auto envelope = PV_TRY(m_decoder.pop());
    if (!envelope)
        return std::nullopt;
    if (envelope->body_case() == wire::Envelope::kError)
        return fail(Error{"hello", "the agent answered Hello with an error", EPROTO});
    // Log and progress lines may come first; only the reply ends the exchange.
    if (envelope->body_case() != wire::Envelope::kHello)
        return std::nullopt;
    const auto& hello = envelope->hello();
    m_connection.reset();
    m_done = true;
    return fmt::format("agent {} on Linux {} ({} sandbox), protocol {}.{}", hello.agent_version(),
                       hello.kernel(), hello.sandbox(), hello.major(), hello.minor());
}

}  // namespace pv::bench
