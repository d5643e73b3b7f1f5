// Framing of the agent protocol: round trips, byte-by-byte feeding, and the
// malformed streams a hostile or broken peer can send.

#include <gtest/gtest.h>

#include "proto/framing.hpp"

namespace pv::proto {
namespace {

wire::Envelope inspect_request(uint64_t id) {
    wire::Envelope envelope;
    envelope.set_request_id(id);
    envelope.mutable_inspect();
    return envelope;
}

std::string header(uint32_t length) {
    return {static_cast<char>(length >> 24), static_cast<char>(length >> 16),
            static_cast<char>(length >> 8), static_cast<char>(length)};
}

TEST(Framing, EncodesBigEndianLengthThenBody) {
    auto frame = encode_frame(inspect_request(7));
    ASSERT_TRUE(frame);
    ASSERT_GE(frame->size(), kFrameHeaderSize);
    EXPECT_EQ(frame->substr(0, 4), header(static_cast<uint32_t>(frame->size() - 4)));
    auto body = decode_body(std::string_view(*frame).substr(4));
    ASSERT_TRUE(body);
    EXPECT_EQ(body->request_id(), 7u);
    EXPECT_TRUE(body->has_inspect());
}

TEST(Framing, RoundTripsEveryMessageType) {
    std::vector<wire::Envelope> envelopes(11);
    envelopes[0].mutable_hello()->set_major(kProtocolMajor);
    envelopes[1].mutable_inspect();
    (*envelopes[2].mutable_inspect_result()->mutable_os_release())["ID"] = "debian";
    envelopes[3].mutable_stage_chunk()->set_data(std::string(1000, '\0'));
    envelopes[4].mutable_apply()->add_files("a.deb");
    envelopes[5].mutable_run()->add_argv("dpkg");
    envelopes[6].mutable_finish();
    envelopes[7].mutable_progress()->set_done(5);
    envelopes[8].mutable_log()->set_line("Setting up");
    envelopes[9].mutable_result()->set_exit_code(3);
    envelopes[10].mutable_error()->set_message("no");
    FrameDecoder decoder;
    for (size_t i = 0; i < envelopes.size(); ++i) {
        envelopes[i].set_request_id(i + 1);
        auto frame = encode_frame(envelopes[i]);
        ASSERT_TRUE(frame) << i;
        ASSERT_TRUE(decoder.feed(frame->data(), frame->size()));
    }
    for (const auto& expected : envelopes) {
        auto popped = decoder.pop();
        ASSERT_TRUE(popped && *popped);
        EXPECT_EQ((*popped)->SerializeAsString(), expected.SerializeAsString());
        EXPECT_EQ(body_name(**popped), body_name(expected));
    }
    auto none = decoder.pop();
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(Framing, DecoderAcceptsOneByteAtATime) {
    const auto frame = *encode_frame(inspect_request(42));
    FrameDecoder decoder;
    for (size_t i = 0; i < frame.size(); ++i) {
        auto popped = decoder.pop();
        ASSERT_TRUE(popped);
        EXPECT_FALSE(*popped) << "complete after only " << i << " bytes";
        ASSERT_TRUE(decoder.feed(&frame[i], 1));
    }
    auto popped = decoder.pop();
    ASSERT_TRUE(popped && *popped);
    EXPECT_EQ((*popped)->request_id(), 42u);
}

TEST(Framing, RefusesToEncodeEmptyOrOversizeEnvelopes) {
    wire::Envelope empty;
    empty.set_request_id(1);
    auto refused = encode_frame(empty);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, EINVAL);

    wire::Envelope big;
    big.mutable_stage_chunk()->set_data(std::string(kMaxFrameSize, 'x'));
    auto oversize = encode_frame(big);
    ASSERT_FALSE(oversize);
    EXPECT_EQ(oversize.error().code, EMSGSIZE);
    EXPECT_NE(oversize.error().message().find("over the limit"), std::string::npos);
}

TEST(Framing, OversizeHeaderFailsAtOnceAndForever) {
    FrameDecoder decoder;
    const std::string bad = header(kMaxFrameSize + 1);
    auto fed = decoder.feed(bad.data(), bad.size());
    ASSERT_FALSE(fed);
    EXPECT_EQ(fed.error().code, EMSGSIZE);
    // The stream position is lost, so even a good frame is refused now.
    const auto good = *encode_frame(inspect_request(1));
    EXPECT_FALSE(decoder.feed(good.data(), good.size()));
    EXPECT_FALSE(decoder.pop());
}

TEST(Framing, ExactlyTheLimitIsAccepted) {
    FrameDecoder decoder;
    const std::string at_limit = header(kMaxFrameSize);
    EXPECT_TRUE(decoder.feed(at_limit.data(), at_limit.size()));
}

TEST(Framing, TruncatedFrameIsReportedAtEndOfStream) {
    const auto frame = *encode_frame(inspect_request(3));
    FrameDecoder decoder;
    ASSERT_TRUE(decoder.feed(frame.data(), frame.size() - 1));
    auto popped = decoder.pop();
    ASSERT_TRUE(popped);
    EXPECT_FALSE(*popped);
    const Error error = decoder.end_of_stream_error();
    EXPECT_EQ(error.code, EPROTO);
    EXPECT_NE(error.message().find("truncated"), std::string::npos);

    FrameDecoder clean;
    EXPECT_EQ(clean.end_of_stream_error().code, EPIPE);
}

TEST(Framing, MalformedBodyIsConsumedAndTheStreamStaysInStep) {
    FrameDecoder decoder;
    // Field 1 as a length-delimited field running past the body: unparsable.
    const std::string garbage = header(3) + "\x0a\x7f\x01";
    const auto good = *encode_frame(inspect_request(9));
    const std::string stream = garbage + good;
    ASSERT_TRUE(decoder.feed(stream.data(), stream.size()));
    auto bad = decoder.pop();
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, EBADMSG);
    auto next = decoder.pop();
    ASSERT_TRUE(next && *next);
    EXPECT_EQ((*next)->request_id(), 9u);
}

TEST(Framing, EmptyAndUnknownMessagesAreErrors) {
    // An empty body, and an envelope whose body is field 99 (a type from a
    // newer minor version): both parse, neither carries a known message.
    const std::string empty = header(0);
    FrameDecoder decoder;
    ASSERT_TRUE(decoder.feed(empty.data(), empty.size()));
    auto popped = decoder.pop();
    ASSERT_FALSE(popped);
    EXPECT_EQ(popped.error().code, ENOMSG);

    // request_id 5, then field 99 length-delimited with 0 bytes.
    const std::string body("\x08\x05\x9a\x06\x00", 5);
    const std::string newer = header(static_cast<uint32_t>(body.size())) + body;
    ASSERT_TRUE(decoder.feed(newer.data(), newer.size()));
    auto unknown_popped = decoder.pop();
    ASSERT_FALSE(unknown_popped);
    EXPECT_EQ(unknown_popped.error().code, ENOMSG);
    EXPECT_NE(unknown_popped.error().message().find("request 5"), std::string::npos);
}

TEST(Framing, UnknownFieldsInKnownMessagesAreIgnored) {
    // The compatibility rule: a newer minor may add fields; older peers
    // still read the message. Field 15 (varint) appended to a Hello.
    wire::Envelope hello;
    hello.set_request_id(1);
    hello.mutable_hello()->set_major(kProtocolMajor);
    std::string body = hello.SerializeAsString();
    body += std::string("\x78\x01", 2);
    auto decoded = decode_body(body);
    ASSERT_TRUE(decoded) << decoded.error().message();
    EXPECT_EQ(decoded->hello().major(), kProtocolMajor);
}

}  // namespace
}  // namespace pv::proto
