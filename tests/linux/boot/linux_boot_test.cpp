// Boots the sandbox kernel with a busybox initramfs whose /init prints a
// marker and reboots. Needs hardware-assisted KVM (under kvm_pvm a Linux
// guest cannot run, shared/PVM.md): its main() runs it in the nested rig there.

#include <gtest/gtest.h>

#include <algorithm>

#include "run_vmm.hpp"
#include "tests/linux/support/guest_initramfs.hpp"

namespace pv::vmm::test {
namespace {

constexpr const char* kMarker = "PATCHVISOR-LINUX-BOOT-OK";

TEST(LinuxBoot, SandboxKernelBootsToInitAndReboots) {
    pv::test::TempDir dir;
    const auto kernel = pv::test::sandbox_kernel();
    const auto initramfs = pv::test::busybox_initramfs(
        dir, "boot", std::string("echo; echo ") + kMarker + "\nreboot -f\n");
    ASSERT_FALSE(kernel.empty() || initramfs.empty());

    auto run = run_vmm({"--kernel", kernel, "--initrd", initramfs, "--cmdline",
                        "console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux", "--mem-mib", "256",
                        "--vcpus", "2", "--timeout-s", "120"});
    bool saw_banner = std::any_of(run.serial.begin(), run.serial.end(), [](const auto& line) {
        return line.find("Linux version") != std::string::npos;
    });
    bool saw_marker = std::find(run.serial.begin(), run.serial.end(), kMarker) != run.serial.end();
    EXPECT_TRUE(saw_banner) << "no kernel banner on the serial console";
    EXPECT_TRUE(saw_marker) << "/init did not run; stderr: " << run.stderr_text;
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_EQ(run.summary["exit_reason"], "reset");
}

}  // namespace
}  // namespace pv::vmm::test
