#pragma once

// A fake agent for the session tests: a thread on the other end of a
// socketpair that hands each request it reads to a script.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "common/fd.hpp"
#include "patcher/session.hpp"
#include "proto/framing.hpp"

namespace pv::patcher {

using Script = std::function<void(int fd, const wire::Envelope& request)>;

inline void send_envelope(int fd, const wire::Envelope& envelope) {
    const std::string frame = *proto::encode_frame(envelope);
    ASSERT_EQ(write(fd, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
}

inline wire::Envelope reply_to(const wire::Envelope& request) {
    wire::Envelope reply;
    reply.set_request_id(request.request_id());
    return reply;
}

// A fake agent: reads requests and hands each to the script until EOF.
class FakeAgent {
  public:
    explicit FakeAgent(Script script) {
        int fds[2];
        EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        m_host = Fd(fds[0]);
        m_agent = Fd(fds[1]);
        m_thread = std::thread([this, script = std::move(script)] {
            proto::FrameDecoder decoder;
            char buffer[65536];
            for (;;) {
                const ssize_t got = read(m_agent.get(), buffer, sizeof buffer);
                if (got <= 0)
                    return;
                if (!decoder.feed(buffer, static_cast<size_t>(got)))
                    return;
                while (auto popped = decoder.pop()) {
                    if (!*popped)
                        break;
                    script(m_agent.get(), **popped);
                }
            }
        });
    }
    ~FakeAgent() {
        shutdown(m_agent.get(), SHUT_RDWR);
        m_thread.join();
    }
    Session session() {
        auto session = Session::from_fd(std::move(m_host));
        EXPECT_TRUE(session);
        return std::move(*session);
    }
    void close_agent_side() { shutdown(m_agent.get(), SHUT_WR); }

  private:
    Fd m_host, m_agent;
    std::thread m_thread;
};

}  // namespace pv::patcher
