// The hybrid Unix-socket backend against real sockets, with a fake device
// on the other side: guest connects to "<uds>_P", "CONNECT P\n" handshakes,
// bytes both ways within the capacity the device grants.

#include "vmm/devices/vsock/unix_backend.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "common/fd.hpp"
#include "tests/support/support.hpp"

namespace pv::vmm::vsock {
namespace {

// Records the backend's calls and grants a settable capacity.
class FakeHost final : public VsockHost {
  public:
    void connect_done(ConnectionId id, Answer answer) override { answers.emplace_back(id, answer); }
    std::optional<Outgoing> connect_guest(uint32_t guest_port) override {
        requested_ports.push_back(guest_port);
        if (refuse_connect)
            return std::nullopt;
        return Outgoing{77, 1u << 30};
    }
    uint32_t send_capacity(ConnectionId) override { return capacity; }
    void send(ConnectionId, std::span<const uint8_t> data) override {
        sent.append(data.begin(), data.end());
        capacity -= static_cast<uint32_t>(data.size());
    }
    void consumed(ConnectionId, uint32_t bytes) override { consumed_bytes += bytes; }
    void host_shutdown(ConnectionId id) override { shutdowns.push_back(id); }
    void host_reset(ConnectionId id) override { resets.push_back(id); }

    std::vector<std::pair<ConnectionId, Answer>> answers;
    std::vector<uint32_t> requested_ports;
    bool refuse_connect = false;
    uint32_t capacity = 1 << 20;
    std::string sent;
    uint64_t consumed_bytes = 0;
    std::vector<ConnectionId> shutdowns;
    std::vector<ConnectionId> resets;
};

int unix_socket() {
    return ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

sockaddr_un address_of(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof(address.sun_path) - 1);
    return address;
}

class UnixBackendTest : public ::testing::Test {
  protected:
    test::TempDir dir;
    std::string uds = dir.path() + "/vsock";
    boost::asio::io_context events;
    FakeHost host;
    std::unique_ptr<UnixSocketBackend> backend;

    void SetUp() override {
        auto created = UnixSocketBackend::create(events, uds);
        ASSERT_TRUE(created) << created.error().message();
        backend = std::move(*created);
        backend->attach(host);
    }
    // Runs the loop until DONE holds (or two seconds pass).
    bool run_until(const std::function<bool()>& done) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            events.run_one_for(std::chrono::milliseconds(10));
            events.restart();
        }
        return done();
    }
    // Runs the loop for a moment, for things that must not happen.
    void settle() {
        events.run_for(std::chrono::milliseconds(100));
        events.restart();
    }
    // A listener at "<uds>_PORT", standing in for a host service.
    Fd listen_on(uint32_t port) {
        Fd listener(unix_socket());
        const sockaddr_un address = address_of(uds + "_" + std::to_string(port));
        EXPECT_EQ(
            ::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)),
            0);
        EXPECT_EQ(::listen(listener.get(), 4), 0);
        return listener;
    }
    // A guest-initiated stream 1 to port 1234; returns the service's end.
    Fd connected_service() {
        Fd listener = listen_on(1234);
        backend->connect(1, 1234);
        EXPECT_TRUE(run_until([&] { return !host.answers.empty(); }));
        return Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    }
    // A host client at "<uds>" that sent LINE.
    Fd client_sending(const std::string& line) {
        Fd client(unix_socket());
        const sockaddr_un address = address_of(uds);
        EXPECT_EQ(
            ::connect(client.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)),
            0);
        EXPECT_EQ(::write(client.get(), line.data(), line.size()), ssize_t(line.size()));
        return client;
    }
    static std::string read_some(const Fd& fd) {
        char buffer[256];
        const ssize_t count = ::read(fd.get(), buffer, sizeof(buffer));
        return count > 0 ? std::string(buffer, static_cast<size_t>(count)) : std::string();
    }
};

TEST_F(UnixBackendTest, ExistingPathIsRefused) {
    EXPECT_FALSE(UnixSocketBackend::create(events, uds));
}

TEST_F(UnixBackendTest, GuestConnectToListeningPortIsAccepted) {
    Fd service = connected_service();
    ASSERT_EQ(host.answers.size(), 1u);
    EXPECT_EQ(host.answers[0], std::make_pair(ConnectionId{1}, Answer::Accepted));
    EXPECT_TRUE(service.valid());
}

TEST_F(UnixBackendTest, GuestConnectWithNobodyListeningIsRefused) {
    backend->connect(1, 4321);
    ASSERT_TRUE(run_until([&] { return !host.answers.empty(); }));
    EXPECT_EQ(host.answers[0], std::make_pair(ConnectionId{1}, Answer::Refused));
}

TEST_F(UnixBackendTest, GuestBytesReachServiceAndAreConsumed) {
    Fd service = connected_service();
    const std::string data = "from the guest";
    backend->receive(1, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    ASSERT_TRUE(run_until([&] { return host.consumed_bytes == data.size(); }));
    EXPECT_EQ(read_some(service), data);
}

TEST_F(UnixBackendTest, ServiceBytesStopAtCapacity) {
    host.capacity = 5;  // granted before the first read starts
    Fd service = connected_service();
    const std::string data = "hello world";
    ASSERT_EQ(::write(service.get(), data.data(), data.size()), ssize_t(data.size()));
    ASSERT_TRUE(run_until([&] { return host.sent.size() == 5; }));
    settle();  // give it the chance to read more
    EXPECT_EQ(host.sent, "hello");
    host.capacity = 100;
    backend->writable(1);
    ASSERT_TRUE(run_until([&] { return host.sent == data; }));
}

TEST_F(UnixBackendTest, ServiceEndOfFileIsHostShutdown) {
    Fd service = connected_service();
    ::shutdown(service.get(), SHUT_WR);
    ASSERT_TRUE(run_until([&] { return !host.shutdowns.empty(); }));
    EXPECT_EQ(host.shutdowns[0], 1u);
}

TEST_F(UnixBackendTest, GuestShutdownReachesServiceAsEndOfFile) {
    Fd service = connected_service();
    backend->guest_shutdown(1);
    settle();
    char byte;
    EXPECT_EQ(::read(service.get(), &byte, 1), 0);
}

TEST_F(UnixBackendTest, ConnectHandshakeAnswersOk) {
    Fd client = client_sending("CONNECT 5000\n");
    ASSERT_TRUE(run_until([&] { return !host.requested_ports.empty(); }));
    EXPECT_EQ(host.requested_ports[0], 5000u);
    backend->guest_answered(77, Answer::Accepted);
    settle();
    EXPECT_EQ(read_some(client), "OK 1073741824\n");
}

TEST_F(UnixBackendTest, BytesAfterConnectLineAreKept) {
    Fd client = client_sending("CONNECT 5000\nearly bytes");
    ASSERT_TRUE(run_until([&] { return !host.requested_ports.empty(); }));
    backend->guest_answered(77, Answer::Accepted);
    ASSERT_TRUE(run_until([&] { return host.sent == "early bytes"; }));
}

TEST_F(UnixBackendTest, MalformedHandshakeIsClosed) {
    Fd client = client_sending("CONNECT 50x0\n");
    settle();
    EXPECT_TRUE(host.requested_ports.empty());
    EXPECT_EQ(read_some(client), "");
}

TEST_F(UnixBackendTest, PortOutOfRangeIsClosed) {
    Fd client = client_sending("CONNECT 4294967296\n");
    settle();
    EXPECT_TRUE(host.requested_ports.empty());
    EXPECT_EQ(read_some(client), "");
}

TEST_F(UnixBackendTest, GuestRefusalClosesClient) {
    Fd client = client_sending("CONNECT 5000\n");
    ASSERT_TRUE(run_until([&] { return !host.requested_ports.empty(); }));
    backend->guest_answered(77, Answer::Refused);
    settle();
    EXPECT_EQ(read_some(client), "");
}

TEST_F(UnixBackendTest, DeviceAtCapClosesClient) {
    host.refuse_connect = true;
    Fd client = client_sending("CONNECT 5000\n");
    ASSERT_TRUE(run_until([&] { return !host.requested_ports.empty(); }));
    settle();
    EXPECT_EQ(read_some(client), "");
}

}  // namespace
}  // namespace pv::vmm::vsock
