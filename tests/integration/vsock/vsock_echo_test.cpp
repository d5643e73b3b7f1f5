// virtio-vsock end to end on /dev/kvm: patchvisor-vmm with the hybrid
// Unix-socket backend and the test guest's vsock driver. The host side is
// this test: a service listening on "<uds>_P" for guest connections, or a
// client sending "CONNECT P\n" to "<uds>". Payloads are 16 MiB of random
// bytes, echoed by the guest and compared by SHA-256.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <random>
#include <string>
#include <thread>

#include "common/fd.hpp"
#include "tests/integration/vmm/run_vmm.hpp"
#include "tests/support/support.hpp"

namespace pv::vmm::test {
namespace {

constexpr size_t kPayloadSize = 16u << 20;

std::string random_payload(size_t size) {
    std::mt19937_64 generator(20261125);
    std::string bytes(size, '\0');
    for (size_t index = 0; index + 8 <= size; index += 8) {
        const uint64_t value = generator();
        std::memcpy(bytes.data() + index, &value, 8);
    }
    return bytes;
}

sockaddr_un address_of(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof(address.sun_path) - 1);
    return address;
}

Fd listen_on(const std::string& path) {
    Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_un address = address_of(path);
    EXPECT_EQ(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)),
              0);
    EXPECT_EQ(::listen(listener.get(), 4), 0);
    return listener;
}

// Accepts within TIMEOUT, or an invalid Fd.
Fd accept_within(const Fd& listener, std::chrono::milliseconds timeout) {
    pollfd waiting{listener.get(), POLLIN, 0};
    if (::poll(&waiting, 1, static_cast<int>(timeout.count())) != 1)
        return Fd(-1);
    return Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
}

// Writes PAYLOAD on one thread and reads until end of file on this one (the
// guest echoes while we write, so both must run at once); the bytes read.
std::string echo_through(const Fd& socket, const std::string& payload) {
    std::thread writer([&] {
        size_t done = 0;
        while (done < payload.size()) {
            const ssize_t count = ::write(socket.get(), payload.data() + done,
                                          std::min<size_t>(payload.size() - done, 1 << 16));
            if (count <= 0)
                break;
            done += static_cast<size_t>(count);
        }
        ::shutdown(socket.get(), SHUT_WR);
    });
    std::string received;
    std::vector<char> buffer(1 << 16);
    for (;;) {
        const ssize_t count = ::read(socket.get(), buffer.data(), buffer.size());
        if (count <= 0)
            break;
        received.append(buffer.data(), static_cast<size_t>(count));
    }
    writer.join();
    return received;
}

bool has_line(const VmmRun& run, const std::string& line) {
    return std::find(run.serial.begin(), run.serial.end(), line) != run.serial.end();
}

class VsockEndToEnd : public ::testing::Test {
  protected:
    pv::test::TempDir dir;
    std::string uds = dir.path() + "/vsock";

    void SetUp() override {
        if (!kvm_present())
            GTEST_SKIP() << "/dev/kvm is absent: cannot run a microVM";
    }
    std::future<VmmRun> start_vm(const std::string& mode) {
        std::vector<std::string> arguments = {
            "--kernel", testguest_path(), "--cmdline", mode,          "--vsock-cid",
            "3",        "--vsock-uds",    uds,         "--timeout-s", "120"};
        return std::async(std::launch::async, [arguments] { return run_vmm(arguments); });
    }
};

// Sends 16 MiB through STREAM, expects them back unchanged, then a clean
// end of the VM whose guest reports MODE done with every byte.
template <class Vm>
void expect_echo_and_clean_end(const Fd& stream, Vm& vm, const std::string& mode) {
    const std::string payload = random_payload(kPayloadSize);
    const std::string echoed = echo_through(stream, payload);
    EXPECT_EQ(echoed.size(), payload.size());
    EXPECT_EQ(pv::test::sha256_of_bytes(echoed), pv::test::sha256_of_bytes(payload));
    const VmmRun run = vm.get();
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_TRUE(has_line(run, "ok vsock " + mode + " bytes=16777216"))
        << ::testing::PrintToString(run.serial);
}

TEST_F(VsockEndToEnd, GuestConnectsAndEchoes16MiB) {
    Fd service = listen_on(uds + "_5000");
    auto vm = start_vm("testguest.vsock=connect-echo testguest.vsock.port=5000");
    Fd stream = accept_within(service, std::chrono::seconds(60));
    ASSERT_TRUE(stream.valid()) << "the guest never connected to " << uds << "_5000";
    expect_echo_and_clean_end(stream, vm, "connect-echo");
}

// Connects to "<uds>" and says "CONNECT PORT\n"; returns the bridged socket
// and the "OK <port>" line, retrying while the VM is still starting (the
// device refuses host connections until the guest driver is up).
std::pair<Fd, std::string> connect_through_uds(const std::string& uds, uint32_t port) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        Fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        const sockaddr_un address = address_of(uds);
        if (::connect(client.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) ==
            0) {
            const std::string request = "CONNECT " + std::to_string(port) + "\n";
            if (::write(client.get(), request.data(), request.size()) ==
                static_cast<ssize_t>(request.size())) {
                std::string line;
                char byte;
                while (::read(client.get(), &byte, 1) == 1 && byte != '\n')
                    line += byte;
                if (line.starts_with("OK "))
                    return {std::move(client), line};
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {Fd(-1), ""};
}

TEST_F(VsockEndToEnd, HostConnectsAndGuestEchoes16MiB) {
    auto vm = start_vm("testguest.vsock=accept-echo testguest.vsock.port=6000");
    auto [stream, answer] = connect_through_uds(uds, 6000);
    ASSERT_TRUE(stream.valid()) << "no OK from " << uds;
    EXPECT_TRUE(answer.size() > 3 && std::stoul(answer.substr(3)) > 0) << answer;
    expect_echo_and_clean_end(stream, vm, "accept-echo");
}

TEST_F(VsockEndToEnd, GuestConnectingToPortNobodyListensOnGetsReset) {
    auto vm = start_vm("testguest.vsock=refused testguest.vsock.port=7000");
    const VmmRun run = vm.get();
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_TRUE(has_line(run, "ok vsock refused bytes=0")) << ::testing::PrintToString(run.serial);
}

}  // namespace
}  // namespace pv::vmm::test
