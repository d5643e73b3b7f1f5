// choose_sandbox over given host facts: auto picks the microVM only where
// hardware KVM can run its Linux guest, and a forced microvm that cannot
// run is refused with the reason.

#include <gtest/gtest.h>

#include "patcher/sandbox/sandbox.hpp"

namespace pv::sandbox {
namespace {

HostFacts hardware_kvm() {
    HostFacts host;
    host.kvm_device = true;
    host.hardware_virtualization = true;
    return host;
}

HostFacts kvm_pvm_host() {
    HostFacts host;
    host.kvm_device = true;
    host.kvm_pvm = true;
    return host;
}

MicroVmSetup some_setup() {
    return {"/opt/pv/patchvisor-vmm", "/opt/pv/bzImage", "/opt/pv/initramfs.cpio.gz",
            kLinuxCommandLine, 512};
}

Result<MicroVmSetup> missing_setup() {
    return fail(make_error("find the microVM's kernel", "set PV_KERNEL"));
}

TEST(ChooseSandbox, AutoPicksTheMicroVmWithHardwareKvm) {
    const auto choice = choose_sandbox(SandboxRequest::Auto, hardware_kvm(), some_setup());
    ASSERT_TRUE(choice) << choice.error().message();
    EXPECT_EQ(choice->kind, SandboxKind::MicroVm);
    EXPECT_NE(choice->reason.find("hardware KVM"), std::string::npos) << choice->reason;
    EXPECT_EQ(choice->microvm.kernel_path, "/opt/pv/bzImage");
}

TEST(ChooseSandbox, AutoPicksTheJailUnderKvmPvmEvenWithVmxShown) {
    HostFacts host = kvm_pvm_host();
    host.hardware_virtualization = true;
    const auto choice = choose_sandbox(SandboxRequest::Auto, host, some_setup());
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->kind, SandboxKind::Jail);
    EXPECT_NE(choice->reason.find("kvm_pvm"), std::string::npos) << choice->reason;
}

TEST(ChooseSandbox, AutoPicksTheJailWithoutVmxOrSvm) {
    HostFacts host;
    host.kvm_device = true;
    const auto choice = choose_sandbox(SandboxRequest::Auto, host, some_setup());
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->kind, SandboxKind::Jail);
    EXPECT_NE(choice->reason.find("neither vmx nor svm"), std::string::npos) << choice->reason;
}

TEST(ChooseSandbox, AutoPicksTheJailWithoutDevKvm) {
    HostFacts host;
    host.hardware_virtualization = true;
    const auto choice = choose_sandbox(SandboxRequest::Auto, host, some_setup());
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->kind, SandboxKind::Jail);
    EXPECT_NE(choice->reason.find("no /dev/kvm"), std::string::npos) << choice->reason;
}

TEST(ChooseSandbox, AutoPicksTheJailWhenDevKvmIsNotOurs) {
    HostFacts host = hardware_kvm();
    host.kvm_access_error = "Permission denied";
    const auto choice = choose_sandbox(SandboxRequest::Auto, host, some_setup());
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->kind, SandboxKind::Jail);
    EXPECT_NE(choice->reason.find("Permission denied"), std::string::npos) << choice->reason;
}

TEST(ChooseSandbox, AutoPicksTheJailWhenTheMicroVmFilesAreMissing) {
    const auto choice = choose_sandbox(SandboxRequest::Auto, hardware_kvm(), missing_setup());
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->kind, SandboxKind::Jail);
    EXPECT_NE(choice->reason.find("PV_KERNEL"), std::string::npos) << choice->reason;
}

TEST(ChooseSandbox, ForcedMicroVmWithoutHardwareKvmIsRefused) {
    const auto choice = choose_sandbox(SandboxRequest::MicroVm, kvm_pvm_host(), some_setup());
    ASSERT_FALSE(choice);
    const std::string message = choice.error().message();
    EXPECT_NE(message.find("--sandbox microvm"), std::string::npos) << message;
    EXPECT_NE(message.find("kvm_pvm"), std::string::npos) << message;
    EXPECT_NE(message.find("--sandbox jail"), std::string::npos) << message;
}

TEST(ChooseSandbox, ForcedMicroVmWithoutItsFilesIsRefused) {
    const auto choice = choose_sandbox(SandboxRequest::MicroVm, hardware_kvm(), missing_setup());
    ASSERT_FALSE(choice);
    EXPECT_NE(choice.error().message().find("PV_KERNEL"), std::string::npos);
}

TEST(ChooseSandbox, ForcedMicroVmWithHardwareKvmIsGranted) {
    const auto choice = choose_sandbox(SandboxRequest::MicroVm, hardware_kvm(), some_setup());
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->kind, SandboxKind::MicroVm);
}

TEST(ChooseSandbox, ForcedJailIsAlwaysGranted) {
    const auto choice = choose_sandbox(SandboxRequest::Jail, hardware_kvm(), some_setup());
    ASSERT_TRUE(choice);
    EXPECT_EQ(choice->kind, SandboxKind::Jail);
    EXPECT_NE(choice->reason.find("requested"), std::string::npos);
}

// This machine, whatever it is: the probe and the decision agree.
TEST(ChooseSandbox, ProbeOfThisHostIsConsistent) {
    const HostFacts host = vmm::probe_host();
    const auto choice = choose_sandbox(SandboxRequest::Auto);
    ASSERT_TRUE(choice);
    if (!vmm::why_no_linux_guest(host).empty()) {
        EXPECT_EQ(choice->kind, SandboxKind::Jail) << choice->reason;
    }
    const auto forced = choose_sandbox(SandboxRequest::MicroVm);
    EXPECT_EQ(forced.has_value(), choice->kind == SandboxKind::MicroVm);
}

TEST(OverlayAccess, OnlyTheMicroVmHandsTheFileOver) {
    EXPECT_EQ(overlay_access(SandboxKind::MicroVm), OverlayAccess::HandedOver);
    EXPECT_EQ(overlay_access(SandboxKind::Jail), OverlayAccess::Shared);
}

}  // namespace
}  // namespace pv::sandbox
