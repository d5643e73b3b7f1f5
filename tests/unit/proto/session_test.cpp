// The host session against a scripted fake agent on a socketpair: deadlines,
// callbacks, out-of-order and truncated replies, chunked staging.

#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "patcher/session.hpp"
#include "proto/framing.hpp"
#include "tests/unit/proto/fake_agent.hpp"

namespace pv::patcher {
namespace {

TEST(Session, HelloExchangesVersions) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        ASSERT_TRUE(request.has_hello());
        EXPECT_EQ(request.hello().major(), proto::kProtocolMajor);
        auto reply = reply_to(request);
        reply.mutable_hello()->set_major(proto::kProtocolMajor);
        reply.mutable_hello()->set_kernel("6.1.0");
        send_envelope(fd, reply);
    });
    auto session = agent.session();
    auto hello = session.hello();
    ASSERT_TRUE(hello) << hello.error().message();
    EXPECT_EQ(hello->kernel(), "6.1.0");
}

TEST(Session, DifferentMajorVersionIsRefused) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto reply = reply_to(request);
        reply.mutable_hello()->set_major(proto::kProtocolMajor + 1);
        send_envelope(fd, reply);
    });
    auto session = agent.session();
    auto hello = session.hello();
    ASSERT_FALSE(hello);
    EXPECT_NE(hello.error().message().find("protocol"), std::string::npos);
}

TEST(Session, SilentAgentHitsTheDeadlineAndBreaksTheSession) {
    FakeAgent agent([](int, const wire::Envelope&) {});
    auto session = agent.session();
    SessionTimeouts timeouts;
    timeouts.inspect = std::chrono::milliseconds(200);
    session.set_timeouts(timeouts);
    const auto start = std::chrono::steady_clock::now();
    auto inventory = session.inspect();
    const auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(inventory);
    EXPECT_EQ(inventory.error().code, ETIMEDOUT);
    EXPECT_GE(waited, std::chrono::milliseconds(200));
    EXPECT_LT(waited, std::chrono::seconds(5));
    EXPECT_TRUE(session.broken());
    auto again = session.inspect();
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message().find("broken"), std::string::npos);
}

TEST(Session, LogsAndProgressReachCallbacksBeforeTheResult) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto log = reply_to(request);
        log.mutable_log()->set_line("Setting up libssl3");
        send_envelope(fd, log);
        auto progress = reply_to(request);
        progress.mutable_progress()->set_phase("apply");
        progress.mutable_progress()->set_done(1);
        progress.mutable_progress()->set_total(2);
        send_envelope(fd, progress);
        auto result = reply_to(request);
        result.mutable_result()->set_message("done");
        send_envelope(fd, result);
    });
    auto session = agent.session();
    std::vector<std::string> lines;
    uint64_t done = 0;
    session.on_log([&](wire::Log::Stream, const std::string& line) { lines.push_back(line); });
    session.on_progress([&](const std::string&, uint64_t d, uint64_t) { done = d; });
    auto result = session.apply({"a.deb"});
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(result->output_tail, "done");
    EXPECT_EQ(lines, std::vector<std::string>{"Setting up libssl3"});
    EXPECT_EQ(done, 1u);
}

TEST(Session, AgentErrorBecomesAnErrorWithItsMessage) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto reply = reply_to(request);
        reply.mutable_error()->set_code(wire::Error::CODE_COMMAND_FAILED);
        reply.mutable_error()->set_message("dpkg -i exited with status 1: dpkg-deb: error");
        send_envelope(fd, reply);
    });
    auto session = agent.session();
    auto result = session.apply({"a.deb"});
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("dpkg-deb: error"), std::string::npos);
    EXPECT_FALSE(session.broken());
}

TEST(Session, ReplyForAnotherRequestIsAProtocolError) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        wire::Envelope reply;
        reply.set_request_id(request.request_id() + 100);
        reply.mutable_result();
        send_envelope(fd, reply);
    });
    auto session = agent.session();
    auto finished = session.finish();
    ASSERT_FALSE(finished);
    EXPECT_EQ(finished.error().code, EPROTO);
    EXPECT_TRUE(session.broken());
}

TEST(Session, WrongReplyTypeIsAnError) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto reply = reply_to(request);
        reply.mutable_result();
        send_envelope(fd, reply);
    });
    auto session = agent.session();
    auto inventory = session.inspect();
    ASSERT_FALSE(inventory);
    EXPECT_NE(inventory.error().message().find("unexpected reply result"), std::string::npos);
}

TEST(Session, AgentDyingMidFrameIsATruncationError) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto reply = reply_to(request);
        reply.mutable_inspect_result()->add_packages()->set_name("libssl3");
        const std::string frame = *proto::encode_frame(reply);
        ASSERT_EQ(write(fd, frame.data(), frame.size() - 2),
                  static_cast<ssize_t>(frame.size() - 2));
        shutdown(fd, SHUT_WR);
    });
    auto session = agent.session();
    auto inventory = session.inspect();
    ASSERT_FALSE(inventory);
    EXPECT_NE(inventory.error().message().find("truncated"), std::string::npos)
        << inventory.error().message();
}

TEST(Session, AdoptsAConnectedAsioSocket) {
    boost::asio::io_context io;
    boost::asio::local::stream_protocol::socket host(io), agent(io);
    boost::asio::local::connect_pair(host, agent);
    boost::asio::generic::stream_protocol::socket generic(std::move(host));
    auto session = Session::from_socket(generic);
    ASSERT_TRUE(session) << session.error().message();
    EXPECT_FALSE(generic.is_open());
    std::thread fake([&] {
        proto::FrameDecoder decoder;
        char buffer[4096];
        std::optional<wire::Envelope> request;
        while (!request) {
            const size_t got = agent.read_some(boost::asio::buffer(buffer));
            ASSERT_TRUE(decoder.feed(buffer, got));
            request = *decoder.pop();
        }
        auto reply = reply_to(*request);
        reply.mutable_result();
        send_envelope(agent.native_handle(), reply);
    });
    EXPECT_TRUE(session->finish());
    fake.join();
}

TEST(Session, StageSendsOrderedChunksWithTheFileDigest) {
    const auto path = std::filesystem::temp_directory_path() /
                      ("pv-session-test-" + std::to_string(getpid()) + ".deb");
    std::string content(Session::kChunkSize * 2 + 123, '\0');
    for (size_t i = 0; i < content.size(); ++i)
        content[i] = static_cast<char>(i * 7);
    std::ofstream(path, std::ios::binary) << content;
    std::string received;
    std::string digest;
    size_t chunks = 0;
    FakeAgent agent([&](int fd, const wire::Envelope& request) {
        ASSERT_TRUE(request.has_stage_chunk());
        const auto& chunk = request.stage_chunk();
        EXPECT_EQ(chunk.offset(), received.size());
        EXPECT_EQ(chunk.total_size(), content.size());
        EXPECT_EQ(chunk.name(), path.filename().string());
        received += chunk.data();
        digest = chunk.sha256();
        ++chunks;
        auto reply = reply_to(request);
        reply.mutable_result();
        send_envelope(fd, reply);
    });
    auto session = agent.session();
    auto staged = session.stage(path);
    std::filesystem::remove(path);
    ASSERT_TRUE(staged) << staged.error().message();
    EXPECT_EQ(chunks, 3u);
    EXPECT_EQ(received, content);
    unsigned char expected[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(content.data()), content.size(), expected);
    EXPECT_EQ(digest, std::string(reinterpret_cast<char*>(expected), sizeof expected));
}

}  // namespace
}  // namespace pv::patcher
