// pv::vmm as a library (DESIGN.md "Exposed as a C++ library"): an embedder
// stops a running VM from its own thread.

#include <gtest/gtest.h>

#include <thread>

#include "run_vmm.hpp"
#include "vmm/micro_vm.hpp"

namespace pv::vmm::test {
namespace {

TEST(Embedding, RequestStopFromAnotherThreadEndsRun) {
    if (!kvm_present())
        GTEST_SKIP() << "/dev/kvm is absent: cannot run a microVM";
    VmConfig config;
    config.kernel_path = testguest_path();
    config.cmdline = "testguest.hang";
    config.vcpus = 2;
    config.serial_log_path = "/dev/null";
    config.timeout = std::chrono::seconds(30);
    auto vm = MicroVm::create(config);
    ASSERT_TRUE(vm) << vm.error().message();
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        (*vm)->request_stop(ExitReason::Stopped, "embedder asked");
    });
    auto summary = (*vm)->run();
    stopper.join();
    ASSERT_TRUE(summary) << summary.error().message();
    EXPECT_EQ(summary->reason, ExitReason::Stopped);
    EXPECT_EQ(summary->detail, "embedder asked");
    EXPECT_GE(summary->wall_time, std::chrono::milliseconds(250));
    EXPECT_LT(summary->wall_time, std::chrono::seconds(10)) << "not the 30 s timeout";
    EXPECT_TRUE(summary->first_serial_byte.has_value());
}

}  // namespace
}  // namespace pv::vmm::test

namespace pv::vmm::test {
namespace {

TEST(Embedding, SerialOutputStopsAtTheLimit) {
    if (!kvm_present())
        GTEST_SKIP() << "/dev/kvm is absent: cannot run a microVM";
    char path[] = "/tmp/pv-serial-limit.XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    close(fd);
    VmConfig config;
    config.kernel_path = testguest_path();
    config.cmdline = "testguest.quick";
    config.serial_log_path = path;
    config.serial_output_limit = 10;
    config.timeout = std::chrono::seconds(30);
    auto vm = MicroVm::create(config);
    ASSERT_TRUE(vm) << vm.error().message();
    auto summary = (*vm)->run();
    ASSERT_TRUE(summary) << summary.error().message();
    EXPECT_EQ(summary->reason, ExitReason::Reset) << "the guest runs on, only output is dropped";
    EXPECT_EQ(slurp(path), "patchvisor");
    unlink(path);
    EXPECT_FALSE((*vm)->run()) << "a MicroVm runs once";
}

}  // namespace
}  // namespace pv::vmm::test
