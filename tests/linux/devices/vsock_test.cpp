// virtio-vsock under Linux's virtio_transport, through patchvisor-vmm's
// hybrid Unix-socket backend: the guest's end is pv-vsock (guest/), the
// host's is this test (vsock_host.hpp). Large transfers each way, many
// streams at once, and a guest that stops reading while the host keeps
// sending; digests on both ends, a deadline on every wait.

#include <gtest/gtest.h>

#include <future>
#include <latch>
#include <thread>

#include "devices_support.hpp"
#include "vsock_host.hpp"

namespace pv::vmm::test {
namespace {

constexpr int kMemoryMib = 256;
constexpr int kTimeoutS = 400;
// How long a step may wait for the guest: well inside the VMM's limit.
constexpr std::chrono::seconds kStepLimit(240);

class LinuxVsock : public ::testing::Test {
  protected:
    pv::test::TempDir dir;
    std::string uds = dir.file("vsock");

    // The VM's run, and whether it still runs (for the waits of vsock_host).
    std::shared_future<VmmRun> vm;
    StillRunning running = [this] {
        return vm.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
    };

    bool start_vm(const std::string& name, const std::string& script, int vcpus = 1) {
        const auto guest = make_guest(dir, name, script);
        if (guest.kernel.empty() || guest.initramfs.empty())
            return false;
        auto arguments = guest_arguments(guest, kMemoryMib, kTimeoutS);
        arguments.insert(arguments.end(), {"--vsock-cid", "3", "--vsock-uds", uds, "--vcpus",
                                           std::to_string(vcpus)});
        vm = std::async(std::launch::async, [arguments] { return run_vmm(arguments); }).share();
        return true;
    }
};

// The "pv-vsock: MODE PORT in=N out=M seconds=S" line of a guest stream.
std::string guest_report(const VmmRun& run, const std::string& mode_and_port) {
    return console_value(run, "pv-vsock: " + mode_and_port);
}

double mib_per_second(uint64_t bytes, double seconds) {
    return seconds > 0 ? static_cast<double>(bytes) / (1 << 20) / seconds : 0;
}

// 32 MiB from the guest to a host service, then 32 MiB from a host client
// to a guest listener; the sender's digest must match the receiver's. First
// a guest connection to a host port nobody listens on.
TEST_F(LinuxVsock, LargeTransfersBothWays) {
    constexpr size_t kSize = 32u << 20;
    const std::string size = std::to_string(kSize);
    Fd service = listen_unix(uds + "_5000", 4);
    ASSERT_TRUE(service.valid());
    ASSERT_TRUE(start_vm("vsock-large",
                         "set -o pipefail\n"
                         "pv-vsock connect 5999 < /dev/null; echo \"REFUSED-EXIT $?\"\n"
                         "head -c " +
                             size +
                             " /dev/urandom > /tmp/out\n"
                             "echo \"G2H-SHA256 $(sha256sum < /tmp/out)\"\n"
                             "pv-vsock connect 5000 < /tmp/out > /dev/null\n"
                             "echo \"G2H-EXIT $?\"\n"
                             "rm /tmp/out\n"
                             "digest=$(pv-vsock listen 5001 < /dev/null | sha256sum)\n"
                             "echo \"H2G-EXIT $?\"\n"
                             "echo \"H2G-SHA256 $digest\"\n"));

    Fd from_guest = accept_before(service, after(kStepLimit), running);
    ASSERT_TRUE(from_guest.valid()) << "the guest never connected to " << uds << "_5000";
    auto start = Clock::now();
    const auto received = exchange(from_guest, "", after(kStepLimit));
    const double guest_to_host_s = std::chrono::duration<double>(Clock::now() - start).count();
    EXPECT_TRUE(received.finished) << received.error;

    const std::string payload = random_bytes(kSize, 20261204);
    Fd to_guest = connect_to_guest(uds, 5001, after(kStepLimit), running);
    ASSERT_TRUE(to_guest.valid()) << "guest port 5001 never accepted";
    start = Clock::now();
    const auto sent = exchange(to_guest, payload, after(kStepLimit));
    const double host_to_guest_s = std::chrono::duration<double>(Clock::now() - start).count();
    EXPECT_TRUE(sent.finished) << sent.error;
    EXPECT_TRUE(sent.received.empty());

    const VmmRun run = vm.get();
    expect_clean_end(run);
    EXPECT_EQ(received.received.size(), kSize);
    // Nobody listens on host port 5999: the guest's connect gets a RST at
    // once, not its connect timeout.
    EXPECT_EQ(console_word(run, "REFUSED-EXIT"), "1") << transcript(run);
    EXPECT_EQ(console_value(run, "pv-vsock: connect:"), "Connection reset by peer")
        << transcript(run);
    EXPECT_EQ(console_word(run, "G2H-EXIT"), "0") << transcript(run);
    EXPECT_EQ(console_word(run, "G2H-SHA256"), pv::test::sha256_of_bytes(received.received))
        << transcript(run);
    EXPECT_EQ(console_word(run, "H2G-EXIT"), "0") << transcript(run);
    EXPECT_EQ(console_word(run, "H2G-SHA256"), pv::test::sha256_of_bytes(payload))
        << transcript(run);
    const auto guest_sent = guest_report(run, "connect 5000");
    const auto guest_received = guest_report(run, "listen 5001");
    EXPECT_TRUE(guest_sent.starts_with("in=0 out=" + size + " ")) << guest_sent;
    EXPECT_TRUE(guest_received.starts_with("in=" + size + " out=0 ")) << guest_received;
    std::printf("vsock guest->host: %.1f MiB/s (host side), guest says %s\n",
                mib_per_second(kSize, guest_to_host_s), guest_sent.c_str());
    std::printf("vsock host->guest: %.1f MiB/s (host side), guest says %s\n",
                mib_per_second(kSize, host_to_guest_s), guest_received.c_str());
}

// 16 guest-initiated and 16 host-initiated streams open at once (32 of the
// VMM's 64), 1 MiB each (four credit windows), each echoed by the other
// side and checked byte for byte; two vCPUs, so the guest's driver runs on
// both while the VMM serves the device.
TEST_F(LinuxVsock, ManyStreamsAtOnceEachEchoed) {
    constexpr int kStreams = 16;
    constexpr size_t kStreamSize = 1u << 20;
    const std::string count = std::to_string(kStreams);
    Fd service = listen_unix(uds + "_6000", kStreams);
    ASSERT_TRUE(service.valid());
    // The guest's script, after "n=COUNT size=BYTES": an echo service for
    // the host's streams, then its own streams to the host's echo.
    constexpr const char* kScript = R"(
pv-vsock echo 7000 $n & echo_pid=$!
i=0; while [ $i -lt $n ]; do head -c $size /dev/urandom > /tmp/in.$i; i=$((i+1)); done
pids=; i=0; while [ $i -lt $n ]; do
  pv-vsock connect 6000 < /tmp/in.$i > /tmp/out.$i & pids="$pids $!"; i=$((i+1))
done
failed=0; for pid in $pids; do wait $pid || failed=$((failed+1)); done
echo "G2H-FAILED $failed"
same=0; i=0; while [ $i -lt $n ]; do
  cmp -s /tmp/in.$i /tmp/out.$i && same=$((same+1)); i=$((i+1))
done
echo "G2H-SAME $same"
wait $echo_pid; echo "ECHO-EXIT $?"
)";
    ASSERT_TRUE(start_vm(
        "vsock-many", "n=" + count + " size=" + std::to_string(kStreamSize) + "\n" + kScript, 2));

    // Host-initiated: every stream is connected before any sends a byte.
    std::latch all_connected(kStreams);
    std::vector<std::future<std::string>> host_streams;
    for (int index = 0; index < kStreams; ++index)
        host_streams.push_back(std::async(std::launch::async, [&, index]() -> std::string {
            Fd stream = connect_to_guest(uds, 7000, after(kStepLimit), running);
            all_connected.count_down();
            if (!stream.valid())
                return "never connected";
            all_connected.wait();
            const std::string payload = random_bytes(kStreamSize, 1000 + index);
            const auto echoed = exchange(stream, payload, after(kStepLimit));
            if (!echoed.finished)
                return echoed.error;
            return echoed.received == payload ? "" : "echo differs from what was sent";
        }));
    // Guest-initiated: all accepted before any is served, so all are open at once.
    std::vector<Fd> accepted;
    while (accepted.size() < kStreams) {
        Fd stream = accept_before(service, after(kStepLimit), running);
        if (!stream.valid())
            break;
        accepted.push_back(std::move(stream));
    }
    EXPECT_EQ(accepted.size(), size_t{kStreams}) << "guest streams that arrived";
    std::vector<std::future<Exchanged>> echoes;
    for (const Fd& stream : accepted)
        echoes.push_back(
            std::async(std::launch::async, [&stream] { return echo(stream, after(kStepLimit)); }));

    for (size_t index = 0; index < echoes.size(); ++index) {
        const auto echoed = echoes[index].get();
        EXPECT_TRUE(echoed.finished) << "guest stream " << index << ": " << echoed.error;
        EXPECT_EQ(echoed.received.size(), kStreamSize) << "guest stream " << index;
    }
    for (int index = 0; index < kStreams; ++index)
        EXPECT_EQ(host_streams[index].get(), "") << "host stream " << index;
    const VmmRun run = vm.get();
    expect_clean_end(run);
    EXPECT_EQ(console_word(run, "G2H-FAILED"), "0") << transcript(run);
    EXPECT_EQ(console_word(run, "G2H-SAME"), count) << transcript(run);
    EXPECT_EQ(console_word(run, "ECHO-EXIT"), "0") << transcript(run);
}

// The guest reads 1 MiB of a stream and then nothing more, while the host
// pushes up to 256 MiB: the host's writes must stop within a few credit
// windows (the VMM reads a socket only while the guest has credit), the
// VMM's memory must stay flat, and once the guest closes the stream the
// host's end closes too and the VM ends cleanly. A second stream (the
// control, whose end lets the guest finish) keeps working meanwhile.
TEST_F(LinuxVsock, GuestThatStopsReadingHoldsTheHostBack) {
    constexpr uint64_t kGuestReads = 1u << 20;
    constexpr uint64_t kPushLimit = 256u << 20;
    // Unix socket buffers, the VMM's 256 KiB per stream, the guest's
    // 256 KiB buf_alloc, with room to spare.
    constexpr uint64_t kInFlightBound = 8u << 20;
    constexpr uint64_t kGrowthBoundKib = 32 * 1024;
    Fd control_service = listen_unix(uds + "_8001", 1);
    ASSERT_TRUE(control_service.valid());
    ASSERT_TRUE(start_vm("vsock-stall",
                         "set -o pipefail\n"
                         "pv-vsock connect 8001 < /dev/null | pv-vsock stall 8000 " +
                             std::to_string(kGuestReads) +
                             "\n"
                             "echo \"STALL-EXIT $?\"\n"));
    Fd control = accept_before(control_service, after(kStepLimit), running);
    ASSERT_TRUE(control.valid()) << "the guest never connected to " << uds << "_8001";
    Fd data = connect_to_guest(uds, 8000, after(kStepLimit), running);
    ASSERT_TRUE(data.valid()) << "guest port 8000 never accepted";
    const pid_t vmm = peer_pid(data);
    ASSERT_GT(vmm, 0);
    const uint64_t resident_before = status_kib(vmm, "VmRSS");

    const auto pushed =
        push_until_stalled(data, kPushLimit, std::chrono::seconds(10), after(kStepLimit));
    const uint64_t resident_after = status_kib(vmm, "VmRSS");
    EXPECT_TRUE(pushed.error.empty()) << pushed.error;
    EXPECT_GE(pushed.bytes, kGuestReads);
    EXPECT_LT(pushed.bytes, kGuestReads + kInFlightBound) << "the VMM kept reading";
    EXPECT_LT(resident_after, resident_before + kGrowthBoundKib)
        << "VmRSS " << resident_before << " -> " << resident_after << " KiB";
    std::printf("stalled guest: host pushed %llu bytes; VMM VmRSS %llu -> %llu KiB\n",
                static_cast<unsigned long long>(pushed.bytes),
                static_cast<unsigned long long>(resident_before),
                static_cast<unsigned long long>(resident_after));

    // The control stream still works: its end lets the guest close the data stream.
    control.reset();
    EXPECT_TRUE(closes_before(data, after(kStepLimit))) << "the host's end never closed";
    const VmmRun run = vm.get();
    expect_clean_end(run);
    EXPECT_EQ(console_word(run, "STALL-EXIT"), "0") << transcript(run);
    EXPECT_NE(console_value(run, "pv-vsock: stalling after"), "") << transcript(run);
    // The VMM's own memory at its peak: its RSS high-water mark less the
    // guest RAM that is resident.
    const uint64_t peak = run.summary.value("peak_rss_kib", uint64_t{0});
    const uint64_t guest = run.summary.value("guest_resident_kib", uint64_t{0});
    EXPECT_LT(peak - std::min(peak, guest), uint64_t{64 * 1024}) << run.stdout_text;
}

}  // namespace
}  // namespace pv::vmm::test
