// A hostile guest's TX packets, one bad header field or chain per test, each
// with the one outcome it must have: dropped (no answer), a RST for the
// packet, or a RST that ends the stream it names.

#include <gtest/gtest.h>

#include "vsock_fixture.hpp"

namespace pv::vmm::vsock::test {
namespace {

// The single RX packet the device sent, expected to be a RST to GUEST_PORT.
void expect_one_reset(std::vector<Packet> packets, uint32_t guest_port = 40000) {
    ASSERT_EQ(packets.size(), 1u);
    EXPECT_TRUE(is_op(packets[0], Op::Reset));
    EXPECT_EQ(packets[0].header.dst_port, guest_port);
    EXPECT_EQ(packets[0].header.dst_cid, kGuestCid);
    EXPECT_EQ(packets[0].header.len, 0u);
}

TEST_F(VsockTest, UnknownPortGetsReset) {
    send(guest_header(Op::ReadWrite, 40000, 9999), "data");
    give_rx(1);
    auto packets = take_rx();
    expect_one_reset(packets);
    EXPECT_EQ(packets[0].header.src_port, 9999u);
    EXPECT_TRUE(backend.received.empty());
}

TEST_F(VsockTest, ResetForUnknownPortIsNotAnswered) {
    send(guest_header(Op::Reset, 40000, 9999));
    give_rx(1);
    EXPECT_TRUE(take_rx().empty());
}

TEST_F(VsockTest, SpoofedSourceCidIsDropped) {
    PacketHeader header = guest_header(Op::Request);
    header.src_cid = 7;
    send(header);
    give_rx(1);
    EXPECT_TRUE(take_rx().empty());
    EXPECT_TRUE(backend.connects.empty());
    EXPECT_EQ(device->stats().dropped_packets, 1u);
}

TEST_F(VsockTest, DestinationOtherThanHostGetsReset) {
    PacketHeader header = guest_header(Op::Request);
    header.dst_cid = 5;
    send(header);
    give_rx(1);
    expect_one_reset(take_rx());
    EXPECT_TRUE(backend.connects.empty());
}

TEST_F(VsockTest, SeqpacketTypeGetsReset) {
    PacketHeader header = guest_header(Op::Request);
    header.type = 2;  // SEQPACKET, not offered
    send(header);
    give_rx(1);
    expect_one_reset(take_rx());
    EXPECT_TRUE(backend.connects.empty());
}

TEST_F(VsockTest, UnknownOpResetsStream) {
    const ConnectionId id = establish();
    PacketHeader header = guest_header(Op::ReadWrite);
    header.op = 42;
    send(header);
    give_rx(1);
    expect_one_reset(take_rx());
    EXPECT_EQ(backend.closes, std::vector<ConnectionId>{id});
}

TEST_F(VsockTest, InvalidOpResetsStream) {
    const ConnectionId id = establish();
    send(guest_header(Op::Invalid));
    give_rx(1);
    expect_one_reset(take_rx());
    EXPECT_EQ(backend.closes, std::vector<ConnectionId>{id});
}

TEST_F(VsockTest, LenPastChainIsDropped) {
    const ConnectionId id = establish();
    PacketHeader header = guest_header(Op::ReadWrite);
    header.len = 100;  // only 4 bytes follow
    send(header, "abcd");
    EXPECT_TRUE(backend.received[id].empty());
    EXPECT_EQ(device->stats().dropped_packets, 1u);
    EXPECT_EQ(device->connection_count(), 1u);
}

TEST_F(VsockTest, LenOverMaximumIsDropped) {
    const ConnectionId id = establish();
    PacketHeader header = guest_header(Op::ReadWrite);
    header.len = kMaxPayload + 1;
    send(header, std::string(kMaxPayload + 1, 'z'));
    EXPECT_TRUE(backend.received[id].empty());
    EXPECT_EQ(device->stats().dropped_packets, 1u);
}

TEST_F(VsockTest, LenOnControlPacketResetsStream) {
    const ConnectionId id = establish();
    PacketHeader header = guest_header(Op::CreditUpdate);
    header.len = 4;
    send(header, "junk");
    give_rx(1);
    expect_one_reset(take_rx());
    EXPECT_EQ(backend.closes, std::vector<ConnectionId>{id});
}

TEST_F(VsockTest, ShortHeaderIsDropped) {
    tx.set_descriptor(0, {kTxSlots, sizeof(PacketHeader) - 1, 0, 0});
    tx.post(0);
    device->queue_notify(kQueueTx);
    run_loop();
    EXPECT_EQ(tx.used_index(), 1);
    EXPECT_EQ(device->stats().dropped_packets, 1u);
}

TEST_F(VsockTest, WritableTxBufferIsDropped) {
    ASSERT_TRUE(memory.write(kTxSlots, guest_header(Op::Request)));
    tx.set_descriptor(0, {kTxSlots, sizeof(PacketHeader), virtio::kDescriptorWrite, 0});
    tx.post(0);
    device->queue_notify(kQueueTx);
    run_loop();
    EXPECT_EQ(tx.used_index(), 1);
    EXPECT_TRUE(backend.connects.empty());
    EXPECT_EQ(device->stats().dropped_packets, 1u);
}

TEST_F(VsockTest, HeaderSplitAcrossDescriptorsIsRead) {
    PacketHeader header = guest_header(Op::Request);
    ASSERT_TRUE(memory.write(kTxSlots, header));
    tx.set_descriptor(0, {kTxSlots, 10, virtio::kDescriptorNext, 1});
    tx.set_descriptor(1, {kTxSlots + 10, sizeof(header) - 10, 0, 0});
    tx.post(0);
    device->queue_notify(kQueueTx);
    run_loop();
    ASSERT_EQ(backend.connects.size(), 1u);
    EXPECT_EQ(backend.connects[0].second, 1234u);
}

TEST_F(VsockTest, DataBeforeResponseResetsStream) {
    send(guest_header(Op::Request));
    send(guest_header(Op::ReadWrite), "early");
    give_rx(1);
    expect_one_reset(take_rx());
    EXPECT_TRUE(backend.received.empty());
}

TEST_F(VsockTest, DataAfterGuestShutdownResetsStream) {
    const ConnectionId id = establish();
    PacketHeader shutdown = guest_header(Op::Shutdown);
    shutdown.flags = kShutdownSend;
    send(shutdown);
    send(guest_header(Op::ReadWrite), "late");
    give_rx(1);
    expect_one_reset(take_rx());
    EXPECT_TRUE(backend.received[id].empty());
}

TEST_F(VsockTest, DuplicateRequestResetsStream) {
    const ConnectionId id = establish();
    send(guest_header(Op::Request));
    give_rx(1);
    expect_one_reset(take_rx());
    EXPECT_EQ(backend.closes, std::vector<ConnectionId>{id});
}

TEST_F(VsockTest, ResponseWithoutRequestGetsReset) {
    send(guest_header(Op::Response));
    give_rx(1);
    expect_one_reset(take_rx());
}

TEST_F(VsockTest, RequestWithPayloadGetsReset) {
    PacketHeader header = guest_header(Op::Request);
    header.len = 3;
    send(header, "abc");
    give_rx(1);
    expect_one_reset(take_rx());
    EXPECT_TRUE(backend.connects.empty());
}

TEST_F(VsockTest, GuestFwdCntAheadOfSentGivesNoCredit) {
    const ConnectionId id = establish();
    PacketHeader update = guest_header(Op::CreditUpdate);
    update.buf_alloc = 16;
    update.fwd_cnt = 1000;  // claims to have read bytes we never sent
    send(update);
    EXPECT_EQ(backend.host->send_capacity(id), 0u);
}

TEST_F(VsockTest, FullReplyQueueHoldsBackTx) {
    // max_replies is 4: the fifth bad packet waits in the ring until the
    // guest gives RX buffers for the RSTs already owed.
    for (uint32_t port = 0; port < 5; ++port)
        send(guest_header(Op::ReadWrite, 40000 + port, 9999), "", port == 4);
    EXPECT_EQ(tx.used_index(), 4);
    give_rx(8);
    EXPECT_EQ(tx.used_index(), 5);
    EXPECT_EQ(take_rx().size(), 5u);
}

TEST_F(VsockTest, TooSmallRxBufferIsReturnedEmpty) {
    send(guest_header(Op::ReadWrite, 40000, 9999));
    give_rx(1, sizeof(PacketHeader) - 1);
    EXPECT_EQ(rx.used_index(), 1);
    EXPECT_EQ(rx.used_element(0).second, 0u);
    give_rx(1);
    EXPECT_EQ(rx.used_index(), 2);
    EXPECT_EQ(rx.used_element(1).second, sizeof(PacketHeader));
}

}  // namespace
}  // namespace pv::vmm::vsock::test
