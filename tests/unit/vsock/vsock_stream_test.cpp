// virtio-vsock streams over plain memory: connecting both ways, data both
// ways, credit, shutdown, many streams and the caps.

#include <gtest/gtest.h>

#include "vsock_fixture.hpp"

namespace pv::vmm::vsock::test {
namespace {

TEST_F(VsockTest, ConfigSpaceHoldsGuestCid) {
    uint64_t cid = 0;
    device->read_config(0, {reinterpret_cast<uint8_t*>(&cid), sizeof(cid)});
    EXPECT_EQ(cid, kGuestCid);
    EXPECT_EQ(device->device_type(), 19u);
    EXPECT_EQ(device->queue_max_sizes().size(), 3u);
}

TEST_F(VsockTest, ReservedGuestCidIsRefused) {
    VsockOptions bad = options();
    bad.guest_cid = 2;
    EXPECT_FALSE(VirtioVsock::create(bad, std::make_unique<FakeBackend>(backend), events));
}

TEST_F(VsockTest, GuestConnectReachesBackendAndGetsResponse) {
    send(guest_header(Op::Request, 40000, 1234));
    ASSERT_EQ(backend.connects.size(), 1u);
    EXPECT_EQ(backend.connects[0].second, 1234u);
    backend.host->connect_done(backend.connects[0].first, Answer::Accepted);
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Response));
    EXPECT_EQ(packets[0].header.src_cid, kHostCid);
    EXPECT_EQ(packets[0].header.dst_cid, kGuestCid);
    EXPECT_EQ(packets[0].header.src_port, 1234u);
    EXPECT_EQ(packets[0].header.dst_port, 40000u);
    EXPECT_EQ(packets[0].header.buf_alloc, 4096u);
}

TEST_F(VsockTest, BackendRefusalSendsReset) {
    send(guest_header(Op::Request));
    backend.host->connect_done(backend.connects[0].first, Answer::Refused);
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Reset));
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockTest, GuestDataReachesBackend) {
    const ConnectionId id = establish();
    send(guest_header(Op::ReadWrite), "hello");
    EXPECT_EQ(backend.received[id], "hello");
}

TEST_F(VsockTest, HostDataReachesGuest) {
    const ConnectionId id = establish();
    const std::string data = "world";
    ASSERT_GE(backend.host->send_capacity(id), data.size());
    backend.host->send(id, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::ReadWrite));
    EXPECT_EQ(packets[0].payload, "world");
}

TEST_F(VsockTest, HostDataWaitsForGuestCredit) {
    PacketHeader request = guest_header(Op::Request);
    request.buf_alloc = 8;  // the guest can take 8 bytes
    send(request);
    const ConnectionId id = backend.connects[0].first;
    backend.host->connect_done(id, Answer::Accepted);
    give_rx(4);
    ASSERT_EQ(backend.host->send_capacity(id), 8u);
    const std::string data = "12345678";
    backend.host->send(id, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    EXPECT_EQ(take_rx().size(), 2u);  // RESPONSE, then the 8 bytes
    EXPECT_EQ(backend.host->send_capacity(id), 0u);
    EXPECT_TRUE(backend.writables.empty());
}

TEST_F(VsockTest, CreditUpdateWakesBackend) {
    PacketHeader request = guest_header(Op::Request);
    request.buf_alloc = 8;
    send(request);
    const ConnectionId id = backend.connects[0].first;
    backend.host->connect_done(id, Answer::Accepted);
    give_rx(4);
    const std::string data = "12345678";
    backend.host->send(id, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    ASSERT_EQ(backend.host->send_capacity(id), 0u);
    PacketHeader update = guest_header(Op::CreditUpdate);
    update.buf_alloc = 8;
    update.fwd_cnt = 8;  // the guest read all 8 bytes
    send(update);
    ASSERT_EQ(backend.writables.size(), 1u);
    EXPECT_EQ(backend.writables[0], id);
    EXPECT_EQ(backend.host->send_capacity(id), 8u);
}

TEST_F(VsockTest, MissingRxBuffersStopHostData) {
    const ConnectionId id = establish();
    const std::string data(4096, 'x');  // the device's pending limit
    backend.host->send(id, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    EXPECT_EQ(backend.host->send_capacity(id), 0u);
    EXPECT_TRUE(backend.writables.empty());
    give_rx(2);
    EXPECT_EQ(backend.writables.size(), 1u);
    EXPECT_GT(backend.host->send_capacity(id), 0u);
}

TEST_F(VsockTest, GuestExceedingOurCreditIsReset) {
    const ConnectionId id = establish();
    send(guest_header(Op::ReadWrite), std::string(4096, 'a'));
    send(guest_header(Op::ReadWrite), "b");  // nothing was consumed: no room
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Reset));
    EXPECT_EQ(backend.received[id].size(), 4096u);
    ASSERT_EQ(backend.closes.size(), 1u);
}

TEST_F(VsockTest, ConsumingSendsCreditUpdate) {
    const ConnectionId id = establish();
    send(guest_header(Op::ReadWrite), std::string(4096, 'a'));
    backend.host->consumed(id, 4096);
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::CreditUpdate));
    EXPECT_EQ(packets[0].header.fwd_cnt, 4096u);
}

TEST_F(VsockTest, CreditRequestIsAnswered) {
    establish();
    send(guest_header(Op::CreditRequest));
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::CreditUpdate));
}

TEST_F(VsockTest, GuestShutdownOfBothDirectionsEndsWithReset) {
    const ConnectionId id = establish();
    PacketHeader shutdown = guest_header(Op::Shutdown);
    shutdown.flags = kShutdownSend | kShutdownReceive;
    send(shutdown);
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Reset));
    EXPECT_EQ(backend.shutdowns, std::vector<ConnectionId>{id});
    EXPECT_EQ(backend.closes, std::vector<ConnectionId>{id});
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockTest, OrderlyCloseResetsOnlyAfterBackendForwarded) {
    const ConnectionId id = establish();
    send(guest_header(Op::ReadWrite), "last words");
    PacketHeader shutdown = guest_header(Op::Shutdown);
    shutdown.flags = kShutdownSend | kShutdownReceive;
    send(shutdown);
    give_rx(1);
    EXPECT_TRUE(take_rx().empty()) << "RST before the backend forwarded the data";
    backend.host->consumed(id, 10);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Reset));
}

TEST_F(VsockTest, HostFailureDuringDrainSendsResetAtOnce) {
    const ConnectionId id = establish();
    send(guest_header(Op::ReadWrite), "last words");
    PacketHeader shutdown = guest_header(Op::Shutdown);
    shutdown.flags = kShutdownSend | kShutdownReceive;
    send(shutdown);
    give_rx(1);
    ASSERT_TRUE(take_rx().empty());
    backend.host->host_reset(id);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Reset));
}

TEST_F(VsockTest, HostEndOfFileSendsShutdownAfterData) {
    const ConnectionId id = establish();
    const std::string data = "tail";
    backend.host->send(id, {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    backend.host->host_shutdown(id);
    give_rx(2);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 2u);
    EXPECT_EQ(packets[0].payload, "tail");
    EXPECT_TRUE(is_op(packets[1], Op::Shutdown));
    EXPECT_EQ(packets[1].header.flags, kShutdownSend);
}

TEST_F(VsockTest, HalfClosedBothWaysEndsWithReset) {
    const ConnectionId id = establish();
    backend.host->host_shutdown(id);
    give_rx(1);
    ASSERT_EQ(take_rx().size(), 1u);  // SHUTDOWN(SEND)
    PacketHeader shutdown = guest_header(Op::Shutdown);
    shutdown.flags = kShutdownSend;
    send(shutdown);
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Reset));
    EXPECT_EQ(backend.closes, std::vector<ConnectionId>{id});
}

TEST_F(VsockTest, GuestResetClosesStreamSilently) {
    const ConnectionId id = establish();
    send(guest_header(Op::Reset));
    give_rx(1);
    EXPECT_TRUE(take_rx().empty());
    EXPECT_EQ(backend.closes, std::vector<ConnectionId>{id});
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockTest, HostInitiatedConnectSendsRequest) {
    auto outgoing = backend.host->connect_guest(5000);
    ASSERT_TRUE(outgoing);
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Request));
    EXPECT_EQ(packets[0].header.dst_port, 5000u);
    EXPECT_EQ(packets[0].header.src_port, outgoing->host_port);
    send(guest_header(Op::Response, 5000, outgoing->host_port));
    ASSERT_EQ(backend.answers.size(), 1u);
    EXPECT_EQ(backend.answers[0], std::make_pair(outgoing->id, Answer::Accepted));
}

TEST_F(VsockTest, HostInitiatedConnectRefusedByGuest) {
    auto outgoing = backend.host->connect_guest(5000);
    give_rx(1);
    ASSERT_EQ(take_rx().size(), 1u);
    send(guest_header(Op::Reset, 5000, outgoing->host_port));
    ASSERT_EQ(backend.answers.size(), 1u);
    EXPECT_EQ(backend.answers[0], std::make_pair(outgoing->id, Answer::Refused));
    EXPECT_EQ(device->connection_count(), 0u);
}

TEST_F(VsockTest, ManyStreamsCarryTheirOwnData) {
    VsockOptions many = options();
    many.max_connections = 40;
    backend = {};
    start(many);
    std::vector<ConnectionId> ids;
    for (uint32_t port = 0; port < 40; ++port)
        ids.push_back(establish(50000 + port, 2000));
    for (uint32_t port = 0; port < 40; ++port)
        send(guest_header(Op::ReadWrite, 50000 + port, 2000), "stream " + std::to_string(port));
    for (uint32_t port = 0; port < 40; ++port)
        EXPECT_EQ(backend.received[ids[port]], "stream " + std::to_string(port));
    EXPECT_EQ(device->connection_count(), 40u);
}

TEST_F(VsockTest, ConnectionCapRefusesWithReset) {
    for (uint32_t port = 0; port < 4; ++port)
        establish(50000 + port, 2000);
    send(guest_header(Op::Request, 50004, 2000));
    EXPECT_EQ(backend.connects.size(), 4u);
    give_rx(1);
    auto packets = take_rx();
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Reset));
    EXPECT_EQ(packets[0].header.dst_port, 50004u);
}

TEST_F(VsockTest, HostConnectAtCapFails) {
    for (uint32_t port = 0; port < 4; ++port)
        establish(50000 + port, 2000);
    EXPECT_FALSE(backend.host->connect_guest(5000));
}

TEST_F(VsockTest, DeviceResetClosesEveryStream) {
    const ConnectionId first = establish(40000);
    const ConnectionId second = establish(40001);
    device->reset();
    run_loop();
    EXPECT_EQ(backend.closes, (std::vector<ConnectionId>{first, second}));
    EXPECT_EQ(device->connection_count(), 0u);
}

}  // namespace
}  // namespace pv::vmm::vsock::test
