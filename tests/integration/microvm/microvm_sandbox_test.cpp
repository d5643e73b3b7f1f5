// The microvm sandbox with the test guest as its agent (images/testguest,
// mode testguest.agent): it connects over virtio-vsock to the host port
// named by pv.port=, sends a Hello frame, reads sector 0 and writes a marker
// through virtio-blk, then resets. The host side is the real sandbox: the
// patchvisor-vmm child, the overlay handed over, the hybrid vsock socket,
// the deadlines and teardown. Runs on kvm_pvm (the test guest needs no
// hardware virtualization).

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "imgfmt/image.hpp"
#include "imgfmt/qcow2/qcow2_image.hpp"
#include "patcher/sandbox/microvm/microvm_sandbox.hpp"
#include "proto/framing.hpp"
#include "tests/support/support.hpp"

namespace pv::sandbox {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// What the test guest's agent mode reads and writes (images/testguest/agent.c).
constexpr uint64_t kMarkerOffset = 2048 * 512;
constexpr const char* kMarker = "patchvisor testguest agent marker";
constexpr const char* kBaseSector = "PV-BASE-SECTOR-0";
constexpr uint64_t kDiskSize = 8 << 20;

std::string slurp(const std::string& path) {
    std::ifstream stream(path);
    std::stringstream buffer;
    buffer << stream.rdbuf();
    return buffer.str();
}

// Processes whose parent is this test: a VMM left running shows up here.
std::vector<pid_t> children() {
    std::vector<pid_t> found;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const std::string name = entry.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        const std::string stat = slurp(entry.path() / "stat");
        const size_t paren = stat.rfind(')');
        if (paren == std::string::npos)
            continue;
        std::istringstream fields(stat.substr(paren + 2));
        char state = 0;
        pid_t parent = 0;
        fields >> state >> parent;
        if (parent == ::getpid())
            found.push_back(std::stoi(name));
    }
    return found;
}

class MicroVmSandboxTest : public ::testing::Test {
  protected:
    void SetUp() override {
        struct stat status {};
        if (::stat("/dev/kvm", &status) != 0)
            GTEST_SKIP() << "needs /dev/kvm (the test guest runs even under kvm_pvm)";
        m_base = m_dir.file("base.raw");
        {
            std::ofstream base(m_base, std::ios::binary);
            base << kBaseSector;
        }
        std::filesystem::resize_file(m_base, kDiskSize);
        m_base_sha = test::sha256_of_file(m_base);
        m_overlay_path = m_dir.file("base.overlay.qcow2");
        auto base = img::open_image(m_base, Access::ReadOnly, img::Backing::Refuse);
        ASSERT_TRUE(base) << base.error().message();
        auto overlay = img::Qcow2Image::create_overlay(m_overlay_path, std::move(*base), m_base,
                                                       img::Format::Raw);
        ASSERT_TRUE(overlay) << overlay.error().message();
        m_overlay = std::move(*overlay);
        std::filesystem::create_directories(m_dir.file("run"));
    }

    SandboxChoice test_guest(const std::string& mode) const {
        SandboxChoice choice;
        choice.kind = SandboxKind::MicroVm;
        choice.reason = "the test asked for it";
        choice.microvm.vmm_path = test::built_binary("vmm/patchvisor-vmm");
        choice.microvm.kernel_path = test::built_binary("images/testguest/testguest.elf");
        choice.microvm.cmdline = mode;
        choice.microvm.memory_mib = 32;
        return choice;
    }

    SandboxOptions options(std::chrono::milliseconds timeout,
                           std::chrono::milliseconds connect) const {
        SandboxOptions options;
        options.log_path = m_dir.file("serial.log");
        options.timeout = timeout;
        options.connect_timeout = connect;
        options.runtime_root = m_dir.file("run");
        return options;
    }

    // Nothing of the sandbox is left: no runtime dir, no socket, no VMM.
    void expect_nothing_left() {
        EXPECT_TRUE(std::filesystem::is_empty(m_dir.file("run")))
            << "a runtime directory or socket is left in " << m_dir.file("run");
        EXPECT_TRUE(children().empty()) << "a patchvisor-vmm process is left";
    }

    // The first frame on STREAM within LIMIT, decoded with the proto code.
    static Result<wire::Envelope> read_frame(int stream, std::chrono::milliseconds limit) {
        proto::FrameDecoder decoder;
        const auto until = Clock::now() + limit;
        for (;;) {
            if (auto envelope = PV_TRY(decoder.pop()))
                return *envelope;
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
            pollfd watched{stream, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&watched, 1, static_cast<int>(left.count())) <= 0)
                return fail(make_error("read a frame", "nothing arrived in time"));
            char buffer[4096];
            const ssize_t got = ::read(stream, buffer, sizeof(buffer));
            if (got <= 0)
                return fail(decoder.end_of_stream_error());
            PV_TRY(decoder.feed(buffer, static_cast<size_t>(got)));
        }
    }

    std::string overlay_bytes(uint64_t offset, size_t length) {
        auto overlay = img::Qcow2Image::open(m_overlay_path, Access::ReadOnly, img::Backing::Allow);
        EXPECT_TRUE(overlay) << overlay.error().message();
        if (!overlay)
            return "";
        std::string bytes(length, '\0');
        auto read = (*overlay)->read_at(std::as_writable_bytes(std::span(bytes)), offset);
        EXPECT_TRUE(read) << read.error().message();
        return bytes;
    }

    test::TempDir m_dir;
    std::string m_base;
    std::string m_base_sha;
    std::string m_overlay_path;
    std::unique_ptr<img::Qcow2Image> m_overlay;
};

TEST_F(MicroVmSandboxTest, AgentSaysHelloOverVsockAndWritesTheOverlay) {
    auto sandbox = start_sandbox(test_guest("testguest.agent"), *m_overlay, options(60s, 30s));
    ASSERT_TRUE(sandbox) << sandbox.error().message() << "\n" << slurp(m_dir.file("serial.log"));
    EXPECT_EQ((*sandbox)->kind(), SandboxKind::MicroVm);
    EXPECT_NE((*sandbox)->describe().find(m_overlay_path), std::string::npos);
    Fd stream = (*sandbox)->take_stream();
    ASSERT_TRUE(stream.valid());

    const auto hello = read_frame(stream.get(), 30s);
    ASSERT_TRUE(hello) << hello.error().message() << "\n" << slurp(m_dir.file("serial.log"));
    ASSERT_TRUE(hello->has_hello()) << proto::body_name(*hello);
    EXPECT_EQ(hello->hello().major(), proto::kProtocolMajor);
    EXPECT_EQ(hello->hello().sandbox(), "microvm");
    EXPECT_EQ(hello->hello().agent_version(), "testguest");
    // The guest read sector 0 through virtio-blk: the base, under the overlay.
    EXPECT_EQ(hello->hello().kernel(), std::string("sector0:") + kBaseSector);

    // The job appends the agent's log lines to the same file while the
    // guest still writes its console there: neither may overwrite the other.
    {
        std::ofstream log(m_dir.file("serial.log"), std::ios::app);
        log << "host line while the VM runs\n";
    }

    // And back: the host's answer reaches the guest, which then resets.
    wire::Envelope finish;
    finish.set_request_id(2);
    finish.mutable_finish();
    const auto answer = proto::encode_frame(finish);
    ASSERT_TRUE(answer);
    ASSERT_EQ(::write(stream.get(), answer->data(), answer->size()),
              static_cast<ssize_t>(answer->size()));

    const auto outcome = (*sandbox)->wait(30s);
    EXPECT_TRUE(outcome.succeeded()) << outcome.describe();
    const auto torn = (*sandbox)->teardown();
    ASSERT_TRUE(torn) << torn.error().message();
    expect_nothing_left();

    // The job's side of the hand-over: drop the stale object, reopen.
    m_overlay.reset();
    const std::string marker = overlay_bytes(kMarkerOffset, std::strlen(kMarker));
    EXPECT_EQ(marker, kMarker) << "the marker written through virtio-blk is not in the overlay";
    EXPECT_EQ(test::sha256_of_file(m_base), m_base_sha) << "the base must never be written";
    const auto check = test::run("qemu-img check " + test::quote(m_overlay_path));
    EXPECT_EQ(check.exit_code, 0) << check.output;

    const std::string log = slurp(m_dir.file("serial.log"));
    EXPECT_NE(log.find("patchvisor testguest"), std::string::npos) << log;
    EXPECT_NE(log.find("testguest: agent got a reply bytes=" + std::to_string(answer->size())),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("host line while the VM runs\n"), std::string::npos) << log;
}

TEST_F(MicroVmSandboxTest, HangingGuestMeetsTheConnectDeadline) {
    const auto started = Clock::now();
    auto sandbox = start_sandbox(test_guest("testguest.hang"), *m_overlay, options(60s, 1500ms));
    const auto took = Clock::now() - started;
    ASSERT_FALSE(sandbox);
    EXPECT_NE(sandbox.error().message().find("did not connect within 1500 ms"), std::string::npos)
        << sandbox.error().message();
    EXPECT_LT(took, 10s);
    expect_nothing_left();
    // The log is kept: it shows how far the guest got.
    EXPECT_NE(slurp(m_dir.file("serial.log")).find("hanging as asked"), std::string::npos);
}

TEST_F(MicroVmSandboxTest, SandboxDeadlineEndsAGuestThatStopsTalking) {
    auto sandbox =
        start_sandbox(test_guest("testguest.agent testguest.linger"), *m_overlay, options(3s, 3s));
    ASSERT_TRUE(sandbox) << sandbox.error().message() << "\n" << slurp(m_dir.file("serial.log"));
    Fd stream = (*sandbox)->take_stream();
    ASSERT_TRUE(read_frame(stream.get(), 3s));
    const auto started = Clock::now();
    const auto outcome = (*sandbox)->wait(60s);
    EXPECT_EQ(outcome.ending, Ending::TimedOut) << outcome.describe();
    EXPECT_LT(Clock::now() - started, 15s);
    // The VM is gone, so is the other end of the stream.
    char byte = 0;
    EXPECT_EQ(::read(stream.get(), &byte, 1), 0);
    ASSERT_TRUE((*sandbox)->teardown());
    expect_nothing_left();
}

TEST_F(MicroVmSandboxTest, TeardownStopsARunningVm) {
    auto sandbox = start_sandbox(test_guest("testguest.agent testguest.linger"), *m_overlay,
                                 options(60s, 30s));
    ASSERT_TRUE(sandbox) << sandbox.error().message() << "\n" << slurp(m_dir.file("serial.log"));
    EXPECT_FALSE((*sandbox)->outcome().has_value()) << "the VM should still run";
    const auto torn = (*sandbox)->teardown();
    ASSERT_TRUE(torn) << torn.error().message();
    EXPECT_EQ(torn->ending, Ending::Stopped) << torn->describe();
    EXPECT_TRUE((*sandbox)->teardown()) << "teardown is idempotent";
    expect_nothing_left();
}

TEST_F(MicroVmSandboxTest, VmThatDiesBeforeConnectingIsReportedWithItsReason) {
    auto sandbox =
        start_sandbox(test_guest("testguest.triple-fault"), *m_overlay, options(60s, 30s));
    ASSERT_FALSE(sandbox);
    const std::string message = sandbox.error().message();
    EXPECT_NE(message.find("triple-fault"), std::string::npos) << message;
    EXPECT_NE(message.find("before the agent connected"), std::string::npos) << message;
    expect_nothing_left();
}

TEST_F(MicroVmSandboxTest, MissingVmmFailsToStartAndLeavesNothing) {
    SandboxChoice choice = test_guest("testguest.agent");
    choice.microvm.vmm_path = m_dir.file("no-such-vmm");
    auto sandbox = start_sandbox(choice, *m_overlay, options(60s, 30s));
    ASSERT_FALSE(sandbox);
    EXPECT_NE(sandbox.error().message().find("no-such-vmm"), std::string::npos);
    expect_nothing_left();
}

}  // namespace
}  // namespace pv::sandbox
