// The real pv-agent in the jail, over the sample GPT image (scripts/images):
// it must connect with the flags the jail gives it, answer Hello, find the guest root on
// the partition, answer Inspect and exit after Finish, and teardown must
// leave the sample byte-identical and the overlay clean for qemu-img.

#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "imgfmt/qcow2/qcow2_image.hpp"
#include "imgfmt/raw/raw_image.hpp"
#include "patcher/sandbox/jail/jail_sandbox.hpp"
#include "proto/framing.hpp"
#include "tests/integration/sandbox/sandbox_test_support.hpp"
#include "tests/support/support.hpp"

namespace pv::sandbox::test {
namespace {

using namespace std::chrono_literals;
using pv::test::quote;

// A blocking client of the agent protocol, enough for this test.
class AgentClient {
  public:
    explicit AgentClient(Fd stream) : m_stream(std::move(stream)) {}

    void send(const wire::Envelope& envelope) {
        auto frame = proto::encode_frame(envelope);
        ASSERT_TRUE(frame) << frame.error().message();
        ASSERT_EQ(::write(m_stream.get(), frame->data(), frame->size()),
                  static_cast<ssize_t>(frame->size()));
    }

    // The next envelope that is not Progress or Log; an empty envelope on
    // EOF, error or after 60 s.
    wire::Envelope receive() {
        const auto until = std::chrono::steady_clock::now() + 60s;
        while (std::chrono::steady_clock::now() < until) {
            auto popped = m_decoder.pop();
            if (!popped)
                return {};
            if (*popped) {
                if ((*popped)->has_progress() || (*popped)->has_log())
                    continue;
                return std::move(**popped);
            }
            pollfd watched{m_stream.get(), POLLIN, 0};
            if (::poll(&watched, 1, 200) <= 0)
                continue;
            char buffer[65536];
            const ssize_t got = ::read(m_stream.get(), buffer, sizeof(buffer));
            if (got <= 0 || !m_decoder.feed(buffer, static_cast<size_t>(got)))
                return {};
        }
        return {};
    }

  private:
    Fd m_stream;
    proto::FrameDecoder m_decoder;
};

TEST(RealAgentTest, InspectsTheSampleGptImageInTheJailAndFinishes) {
    PV_SKIP_WITHOUT_PRIVILEGES();
    const auto located = pv::test::run(
        "\"$PV_SOURCE_DIR/scripts/images\" --build-dir "
        "\"$PV_BINARY_DIR\" path sample-gpt 2>/dev/null");
    ASSERT_EQ(located.exit_code, 0)
        << "sample-gpt is not built; build it with: scripts/images samples";
    const std::string sample = located.output.substr(0, located.output.find('\n'));
    const std::string sample_sha = pv::test::sha256_of_file(sample);
    pv::test::TempDir dir;
    const std::string overlay_path = dir.file("overlay.qcow2");
    {
        auto backing = img::RawImage::open(sample, Access::ReadOnly);
        ASSERT_TRUE(backing) << backing.error().message();
        auto overlay = img::Qcow2Image::create_overlay(overlay_path, std::move(*backing), sample,
                                                       img::Format::Raw);
        ASSERT_TRUE(overlay) << overlay.error().message();
        SandboxOptions options;
        options.agent_path = pv::test::built_binary("agent/pv-agent");
        options.log_path = dir.file("agent.log");
        options.timeout = 120s;
        auto jail = JailSandbox::start(**overlay, options, "the test asked");
        ASSERT_TRUE(jail) << jail.error().message();
        AgentClient agent((*jail)->take_stream());
        wire::Envelope request;
        request.set_request_id(1);
        request.mutable_hello()->set_major(proto::kProtocolMajor);
        request.mutable_hello()->set_minor(proto::kProtocolMinor);
        agent.send(request);
        const wire::Envelope hello = agent.receive();
        ASSERT_TRUE(hello.has_hello()) << hello.DebugString();
        EXPECT_EQ(hello.hello().sandbox(), "jail");
        request.set_request_id(2);
        request.mutable_inspect();
        agent.send(request);
        const wire::Envelope inspected = agent.receive();
        ASSERT_TRUE(inspected.has_inspect_result()) << inspected.DebugString();
        EXPECT_EQ(inspected.inspect_result().os_release().at("ID"), "debian");
        EXPECT_EQ(inspected.inspect_result().filesystem(), "ext4");
        request.set_request_id(3);
        request.mutable_finish();
        agent.send(request);
        EXPECT_TRUE(agent.receive().has_result());
        const AgentOutcome ended = (*jail)->wait(30s);
        EXPECT_TRUE(ended.succeeded()) << ended.describe();
        auto torn_down = (*jail)->teardown();
        ASSERT_TRUE(torn_down) << torn_down.error().message();
        auto flushed = (*overlay)->flush();
        ASSERT_TRUE(flushed) << flushed.error().message();
    }
    expect_command("qemu-img check -q " + quote(overlay_path));
    EXPECT_EQ(pv::test::sha256_of_file(sample), sample_sha);
}

}  // namespace
}  // namespace pv::sandbox::test
