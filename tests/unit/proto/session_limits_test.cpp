// The session against a fake agent that breaks the limits of
// patcher/session_limits.hpp and the deadlines of patcher/session.hpp: each
// ends in an error that names the limit, and the session refuses to go on.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "patcher/session.hpp"
#include "tests/unit/proto/fake_agent.hpp"

namespace pv::patcher {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Sends without caring whether the host still listens: it hangs up as
// soon as a limit breaks, and the fake agent may still be writing.
void offer(int fd, const wire::Envelope& envelope) {
    const std::string frame = *proto::encode_frame(envelope);
    (void)::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
}

wire::Envelope inspect_result(const wire::Envelope& request, int packages) {
    auto reply = reply_to(request);
    auto* result = reply.mutable_inspect_result();
    result->set_package_manager(wire::PACKAGE_MANAGER_DPKG);
    for (int i = 0; i < packages; ++i)
        result->add_packages()->set_name("p" + std::to_string(i));
    return reply;
}

void expect_broken_with(Session& session, const Result<wire::InspectResult>& result,
                        const std::string& text) {
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find(text), std::string::npos) << result.error().message();
    EXPECT_TRUE(session.broken());
}

TEST(SessionLimits, TrickledFrameFailsAtTheFrameDeadline) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        const std::string frame = *proto::encode_frame(inspect_result(request, 100));
        for (char byte : frame) {
            if (::send(fd, &byte, 1, MSG_NOSIGNAL) != 1)
                return;
            std::this_thread::sleep_for(milliseconds(20));
        }
    });
    auto session = agent.session();
    SessionTimeouts timeouts;
    timeouts.frame = milliseconds(300);
    session.set_timeouts(timeouts);
    const auto started = Clock::now();
    const auto result = session.inspect();
    EXPECT_LT(Clock::now() - started, std::chrono::seconds(5));
    expect_broken_with(session, result, "the agent trickles");
    EXPECT_EQ(result.error().code, ETIMEDOUT);
}

TEST(SessionLimits, ADeadlineSetForAPhaseCapsTheRequestAndIsNamed) {
    FakeAgent agent([](int, const wire::Envelope&) {});
    auto session = agent.session();
    session.set_deadline(Clock::now() + milliseconds(200), "the inspect phase's limit of 0.2 s");
    const auto started = Clock::now();
    const auto result = session.inspect();
    EXPECT_LT(Clock::now() - started, std::chrono::seconds(5));
    expect_broken_with(session, result, "(the inspect phase's limit of 0.2 s)");
}

TEST(SessionLimits, LogVolumeOfTheSessionIsBounded) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        for (int i = 0; i < 50; ++i) {
            auto log = reply_to(request);
            log.mutable_log()->set_line(std::string(100, 'x'));
            offer(fd, log);
        }
        offer(fd, inspect_result(request, 1));
    });
    auto session = agent.session();
    SessionLimits limits;
    limits.log_bytes = 1000;
    session.set_limits(limits);
    size_t lines = 0;
    session.on_log([&](wire::Log::Stream, const std::string&) { ++lines; });
    expect_broken_with(session, session.inspect(), "more than 1000 bytes of log output");
    EXPECT_EQ(lines, 10u) << "no line past the limit may reach the log";
}

TEST(SessionLimits, OverlongLogLineIsRefused) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto log = reply_to(request);
        log.mutable_log()->set_line(std::string(200, 'x'));
        offer(fd, log);
    });
    auto session = agent.session();
    SessionLimits limits;
    limits.log_line = 100;
    session.set_limits(limits);
    expect_broken_with(session, session.inspect(), "log line of 200 bytes");
}

TEST(SessionLimits, EndlessProgressIsBoundedPerRequest) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        for (int i = 0; i < 20; ++i) {
            auto progress = reply_to(request);
            progress.mutable_progress()->set_phase("apply");
            offer(fd, progress);
        }
    });
    auto session = agent.session();
    SessionLimits limits;
    limits.interim_messages = 10;
    session.set_limits(limits);
    expect_broken_with(session, session.inspect(), "more than 10 log and progress messages");
}

TEST(SessionLimits, TooManyPackagesAndOverlongFieldsAreRefused) {
    FakeAgent agent(
        [](int fd, const wire::Envelope& request) { offer(fd, inspect_result(request, 4)); });
    auto session = agent.session();
    SessionLimits limits;
    limits.packages = 3;
    session.set_limits(limits);
    expect_broken_with(session, session.inspect(), "4 packages is over the limit of 3");

    FakeAgent other([](int fd, const wire::Envelope& request) {
        auto reply = inspect_result(request, 1);
        reply.mutable_inspect_result()->mutable_packages(0)->set_version(std::string(600, '1'));
        offer(fd, reply);
    });
    auto second = other.session();
    expect_broken_with(second, second.inspect(), "package 0 version: 600 bytes");
}

TEST(SessionLimits, ControlCharactersNeverReachTheCallerOrTheTerminal) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto log = reply_to(request);
        log.mutable_log()->set_line("\x1b[2Jcleared\rscreen");
        offer(fd, log);
        auto reply = reply_to(request);
        reply.mutable_error()->set_message("bad\x1b]0;title\x07 news\nsecond line");
        offer(fd, reply);
    });
    auto session = agent.session();
    std::string line;
    session.on_log([&](wire::Log::Stream, const std::string& text) { line = text; });
    const auto result = session.apply({"a.deb"});
    EXPECT_EQ(line, "?[2Jcleared?screen");
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("bad?]0;title? news\nsecond line"), std::string::npos)
        << result.error().message();
}

TEST(SessionLimits, LongResultMessageKeepsItsEnd) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto reply = reply_to(request);
        reply.mutable_result()->set_message(std::string(100'000, 'a') + "the reason");
        offer(fd, reply);
    });
    auto session = agent.session();
    SessionLimits limits;
    limits.message = 1000;
    session.set_limits(limits);
    const auto result = session.apply({"a.deb"});
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_LT(result->output_tail.size(), 1100u);
    EXPECT_TRUE(result->output_tail.ends_with("the reason"));
    EXPECT_TRUE(result->output_tail.starts_with("[99010 bytes cut]"));
}

TEST(SessionLimits, MessageSentBetweenRequestsIsRefused) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto reply = reply_to(request);
        reply.mutable_hello()->set_major(proto::kProtocolMajor);
        offer(fd, reply);
        auto extra = reply_to(request);
        extra.mutable_log()->set_line("nobody asked");
        offer(fd, extra);
    });
    auto session = agent.session();
    ASSERT_TRUE(session.hello());
    std::this_thread::sleep_for(milliseconds(100));
    expect_broken_with(session, session.inspect(), "nobody asked for");
}

}  // namespace
}  // namespace pv::patcher
