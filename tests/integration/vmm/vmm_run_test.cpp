// patchvisor-vmm running the freestanding test guest (images/testguest) on
// /dev/kvm; every line of the serial transcript is checked.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "run_vmm.hpp"

namespace pv::vmm::test {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kMmioGapStart = 0xd0000000;

#define SKIP_WITHOUT_KVM() \
    if (!kvm_present())    \
    GTEST_SKIP() << "/dev/kvm is absent: cannot run a microVM"

// The workload the guest runs at CPL3 (images/testguest/main.c user_main).
uint64_t expected_user_result() {
    uint64_t value = 0;
    for (uint64_t index = 0; index < 20000000; ++index)
        value = value * 6364136223846793005ull + index;
    return value;
}

// What the guest must see in e820 for `memory_mib` (boot_params.cpp).
std::string expected_memory_line(uint64_t memory_mib) {
    uint64_t size = memory_mib * kMiB;
    uint64_t usable = 0x9fc00 + (std::min(size, kMmioGapStart) - kMiB);
    uint64_t top = std::min(size, kMmioGapStart);
    int entries = 3;
    if (size > kMmioGapStart) {
        usable += size - kMmioGapStart;
        top = (4ull << 30) + size - kMmioGapStart;
        entries = 4;
    }
    return fmt::format("ok memory e820-entries={} usable-kib={} top={:#x}", entries, usable >> 10,
                       top);
}

std::vector<std::string> expected_transcript(uint64_t memory_mib, const std::string& cmdline) {
    return {
        "patchvisor testguest 1",
        expected_memory_line(memory_mib),
        "ok cmdline " + cmdline,
        "ok page-fault cr2=0x400000000000 error=0x0",
        "ok timer-irq ticks>=3 vector=0x20",
        "ok serial-irq iir=0x2",
        fmt::format("ok cpl3 iterations=20000000 result={:#x}", expected_user_result()),
        "testguest: all tests passed, resetting",
    };
}

void expect_transcript(const VmmRun& run, const std::vector<std::string>& expected) {
    for (size_t index = 0; index < expected.size(); ++index) {
        ASSERT_LT(index, run.serial.size()) << "transcript ends before line " << index + 1 << " '"
                                            << expected[index] << "'\nstderr: " << run.stderr_text;
        EXPECT_EQ(run.serial[index], expected[index]) << "line " << index + 1;
    }
    EXPECT_EQ(run.serial.size(), expected.size()) << "extra lines in the transcript";
}

TEST(TestGuest, PassesEverySelfTestAndResets) {
    SKIP_WITHOUT_KVM();
    auto run = run_vmm({"--kernel", testguest_path(), "--cmdline", "console=ttyS0 hello",
                        "--mem-mib", "128", "--timeout-s", "60"});
    expect_transcript(run, expected_transcript(128, "console=ttyS0 hello"));
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    ASSERT_TRUE(run.summary.is_object()) << run.stdout_text;
    EXPECT_EQ(run.summary["exit_reason"], "reset");
    EXPECT_GT(run.summary["exits"]["io"].get<uint64_t>(), 100u) << "serial output is port I/O";
    EXPECT_EQ(run.summary["exits"]["unclaimed"].get<uint64_t>(), 0u);
    EXPECT_GT(run.summary["peak_rss_kib"].get<uint64_t>(), 0u);
    EXPECT_TRUE(run.summary.contains("first_serial_byte_ms"));
}

TEST(TestGuest, TwoVcpusAndMemoryAboveTheMmioGap) {
    SKIP_WITHOUT_KVM();
    // 4 GiB is mapped with MAP_NORESERVE: the host commits only what the
    // guest touches.
    auto run = run_vmm({"--kernel", testguest_path(), "--cmdline", "smp", "--mem-mib", "4096",
                        "--vcpus", "2", "--timeout-s", "60"});
    expect_transcript(run, expected_transcript(4096, "smp"));
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_LT(run.summary["guest_resident_kib"].get<uint64_t>(), 16u * 1024);
}

TEST(TestGuest, SerialToStdoutWithDash) {
    SKIP_WITHOUT_KVM();
    auto run = run_vmm({"--kernel", testguest_path(), "--serial-log", "-", "--timeout-s", "60"});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_EQ(run.stdout_text.rfind("patchvisor testguest 1\n", 0), 0u) << run.stdout_text;
    EXPECT_NE(run.stdout_text.find("testguest: all tests passed"), std::string::npos);
}

TEST(VmEnd, WallClockTimeoutStopsAHungGuest) {
    SKIP_WITHOUT_KVM();
    auto run = run_vmm({"--kernel", testguest_path(), "--cmdline", "testguest.hang", "--timeout-s",
                        "1", "--vcpus", "2"});
    ASSERT_GE(run.serial.size(), 4u);
    EXPECT_EQ(run.serial[3], "testguest: hanging as asked");
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_EQ(run.summary["exit_reason"], "timeout");
    double wall = run.summary["wall_ms"].get<double>();
    EXPECT_GE(wall, 1000.0);
    EXPECT_LT(wall, 5000.0) << "stop must not hang on a blocked vCPU";
    EXPECT_NE(run.stderr_text.find("timeout"), std::string::npos);
}

TEST(VmEnd, TripleFaultEndsTheVmWithRegisters) {
    SKIP_WITHOUT_KVM();
    auto run = run_vmm(
        {"--kernel", testguest_path(), "--cmdline", "testguest.triple-fault", "--timeout-s", "30"});
    ASSERT_GE(run.serial.size(), 4u);
    EXPECT_EQ(run.serial[3], "testguest: triple fault as asked");
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_EQ(run.summary["exit_reason"], "triple-fault");
    std::string detail = run.summary["detail"];
    EXPECT_NE(detail.find("KVM_EXIT_SHUTDOWN"), std::string::npos);
    EXPECT_NE(detail.find("rip=0x10"), std::string::npos) << "rip inside the guest at 1 MiB";
    EXPECT_NE(run.stderr_text.find("cr3=0x9000"), std::string::npos) << run.stderr_text;
}

TEST(VmEnd, BadInputsFailBeforeBoot) {
    SKIP_WITHOUT_KVM();
    auto not_a_kernel = run_vmm({"--kernel", "/etc/hostname"});
    EXPECT_EQ(not_a_kernel.exit_code, 1);
    EXPECT_NE(not_a_kernel.stderr_text.find("neither an ELF file nor a bzImage"), std::string::npos)
        << not_a_kernel.stderr_text;
    auto too_many = run_vmm({"--kernel", testguest_path(), "--vcpus", "64"});
    EXPECT_EQ(too_many.exit_code, 1);
    EXPECT_NE(too_many.stderr_text.find("--vcpus 64"), std::string::npos);
    auto tiny = run_vmm({"--kernel", testguest_path(), "--mem-mib", "8"});
    EXPECT_EQ(tiny.exit_code, 1);
    auto missing = run_vmm({"--kernel", "/nonexistent/kernel"});
    EXPECT_NE(missing.exit_code, 0);
}

}  // namespace
}  // namespace pv::vmm::test
