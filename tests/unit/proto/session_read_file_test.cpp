// Session::read_file against a scripted fake agent: pieces assembled into
// the whole file, and an agent whose pieces or names do not add up breaks
// the session rather than feeding the resolver a made-up file.

#include <gtest/gtest.h>

#include <string>

#include "patcher/session.hpp"
#include "tests/unit/proto/fake_agent.hpp"

namespace pv::patcher {
namespace {

// Answers ReadFile of CONTENT in pieces of PIECE bytes.
Script serve_file(std::string content, size_t piece) {
    return [content = std::move(content), piece](int fd, const wire::Envelope& request) {
        ASSERT_TRUE(request.has_read_file());
        auto reply = reply_to(request);
        auto* data = reply.mutable_file_data();
        data->set_kind(wire::FileData::KIND_FILE);
        data->set_size(content.size());
        const auto offset = static_cast<size_t>(request.read_file().offset());
        data->set_data(content.substr(offset, piece));
        send_envelope(fd, reply);
    };
}

TEST(SessionReadFile, AssemblesThePieces) {
    const std::string content(2'500'000, 's');
    FakeAgent agent(serve_file(content + "tail", 1024 * 1024));
    auto session = agent.session();
    auto file = session.read_file("/var/lib/dpkg/status", 8 << 20);
    ASSERT_TRUE(file) << file.error().message();
    EXPECT_EQ(file->kind(), wire::FileData::KIND_FILE);
    EXPECT_EQ(file->data(), content + "tail");
}

TEST(SessionReadFile, OverTheLimitIsAnError) {
    FakeAgent agent(serve_file(std::string(5000, 'x'), 4096));
    auto session = agent.session();
    auto file = session.read_file("/etc/apt/trusted.gpg", 4000);
    ASSERT_FALSE(file);
    EXPECT_NE(file.error().message().find("over the limit"), std::string::npos);
}

TEST(SessionReadFile, AnEmptyPieceBeforeTheEndBreaksTheSession) {
    FakeAgent agent(serve_file(std::string(10, 'x'), 0));
    auto session = agent.session();
    auto file = session.read_file("/etc/apt/preferences", 1 << 20);
    ASSERT_FALSE(file);
    EXPECT_NE(file.error().message().find("do not add up"), std::string::npos);
    EXPECT_TRUE(session.broken());
}

TEST(SessionReadFile, ASizeThatChangesBetweenPiecesBreaksTheSession) {
    size_t calls = 0;
    FakeAgent agent([&calls](int fd, const wire::Envelope& request) {
        auto reply = reply_to(request);
        auto* data = reply.mutable_file_data();
        data->set_kind(wire::FileData::KIND_FILE);
        data->set_size(calls++ == 0 ? 100 : 50);
        data->set_data(std::string(40, 'y'));
        send_envelope(fd, reply);
    });
    auto session = agent.session();
    EXPECT_FALSE(session.read_file("/status", 1 << 20));
    EXPECT_TRUE(session.broken());
}

TEST(SessionReadFile, EntriesMustBePlainNames) {
    for (const std::string bad : {"../escape", "a/b", "..", ""}) {
        FakeAgent agent([bad](int fd, const wire::Envelope& request) {
            auto reply = reply_to(request);
            auto* data = reply.mutable_file_data();
            data->set_kind(wire::FileData::KIND_DIRECTORY);
            data->add_entries("good.gpg");
            data->add_entries(bad);
            send_envelope(fd, reply);
        });
        auto session = agent.session();
        auto listing = session.read_file("/etc/apt/trusted.gpg.d", 0);
        EXPECT_FALSE(listing) << "'" << bad << "' was accepted";
        EXPECT_TRUE(session.broken());
    }
}

TEST(SessionReadFile, MissingIsNotAnError) {
    FakeAgent agent([](int fd, const wire::Envelope& request) {
        auto reply = reply_to(request);
        reply.mutable_file_data()->set_kind(wire::FileData::KIND_MISSING);
        send_envelope(fd, reply);
    });
    auto session = agent.session();
    auto file = session.read_file("/etc/apt/preferences", 1 << 20);
    ASSERT_TRUE(file) << file.error().message();
    EXPECT_EQ(file->kind(), wire::FileData::KIND_MISSING);
}

}  // namespace
}  // namespace pv::patcher
