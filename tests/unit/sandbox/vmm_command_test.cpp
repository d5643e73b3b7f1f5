// The microvm sandbox's side of patchvisor-vmm: the command line it builds
// and how each way the VMM can end becomes an AgentOutcome.

#include <signal.h>

#include <algorithm>

#include <gtest/gtest.h>

#include "patcher/sandbox/microvm/vmm_command.hpp"

namespace pv::sandbox {
namespace {

VmmCommand linux_command() {
    VmmCommand command;
    command.setup = {"/pv/patchvisor-vmm", "/pv/bzImage", "/pv/initramfs.cpio.gz", "", 512};
    command.disk_path = "/work/vm.overlay.qcow2";
    command.vsock_uds = "/run/patchvisor/1-0/vsock.sock";
    command.serial_log = "/work/vm.agent.log";
    command.timeout = std::chrono::milliseconds(1500);
    return command;
}

// The value following FLAG in ARGUMENTS, or "<absent>".
std::string value_of(const std::vector<std::string>& arguments, const std::string& flag) {
    const auto at = std::find(arguments.begin(), arguments.end(), flag);
    if (at == arguments.end() || at + 1 == arguments.end())
        return "<absent>";
    return *(at + 1);
}

TEST(VmmArguments, LinuxGuestGetsKernelInitrdDiskVsockLogAndDeadline) {
    const auto arguments = vmm_arguments(linux_command());
    EXPECT_EQ(value_of(arguments, "--kernel"), "/pv/bzImage");
    EXPECT_EQ(value_of(arguments, "--initrd"), "/pv/initramfs.cpio.gz");
    EXPECT_EQ(value_of(arguments, "--disk"), "/work/vm.overlay.qcow2");
    EXPECT_EQ(value_of(arguments, "--vsock-cid"), "3");
    EXPECT_EQ(value_of(arguments, "--vsock-uds"), "/run/patchvisor/1-0/vsock.sock");
    EXPECT_EQ(value_of(arguments, "--serial-log"), "/work/vm.agent.log");
    EXPECT_EQ(value_of(arguments, "--timeout-s"), "1.500");
    EXPECT_EQ(value_of(arguments, "--mem-mib"), "512");
    EXPECT_NE(std::find(arguments.begin(), arguments.end(), "--json"), arguments.end());
    const std::string cmdline = value_of(arguments, "--cmdline");
    for (const char* word : {"console=ttyS0", "reboot=k", "panic=-1", "pv.port=1024"})
        EXPECT_NE(cmdline.find(word), std::string::npos) << word << " missing from " << cmdline;
    // No network device exists to ask for; nothing but these flags is passed.
    for (const auto& argument : arguments)
        EXPECT_EQ(argument.find("net"), std::string::npos) << argument;
}

TEST(VmmArguments, ReadOnlyOverlayAndTestGuestWithoutInitrd) {
    VmmCommand command = linux_command();
    command.disk_read_only = true;
    command.setup.initrd_path.clear();
    command.setup.cmdline = "testguest.agent";
    command.timeout = std::chrono::milliseconds(0);
    const auto arguments = vmm_arguments(command);
    EXPECT_EQ(value_of(arguments, "--disk"), "/work/vm.overlay.qcow2,readonly");
    EXPECT_EQ(value_of(arguments, "--initrd"), "<absent>");
    EXPECT_EQ(value_of(arguments, "--cmdline"), "testguest.agent pv.port=1024");
    // 0 would mean "no limit" to the VMM: a spent deadline is a millisecond.
    EXPECT_EQ(value_of(arguments, "--timeout-s"), "0.001");
}

TEST(VmmArguments, HybridVsockPortSocket) {
    EXPECT_EQ(port_socket_path("/run/x/vsock.sock", 1024), "/run/x/vsock.sock_1024");
}

VmmEnd exited(int status, const std::string& reason, const std::string& detail = "") {
    VmmEnd end;
    end.process = {true, status, 0};
    end.summary_json =
        "{\"exit_reason\":\"" + reason + "\",\"detail\":\"" + detail + "\",\"wall_ms\":12.5}\n";
    return end;
}

TEST(AgentOutcomeOfVmm, ResetIsASuccess) {
    const auto outcome = agent_outcome(exited(0, "reset"));
    EXPECT_TRUE(outcome.succeeded()) << outcome.describe();
    EXPECT_NE(outcome.describe().find("reset"), std::string::npos);
}

TEST(AgentOutcomeOfVmm, PowerOffIsASuccess) {
    EXPECT_TRUE(agent_outcome(exited(0, "power-off")).succeeded());
}

TEST(AgentOutcomeOfVmm, KernelPanicThatResetIsAFailure) {
    VmmEnd end = exited(0, "reset");
    end.serial_tail =
        "[    1.2] Kernel panic - not syncing: Attempted to kill init! exitcode=0x100\n"
        "[    1.3] Rebooting in 1 seconds..\n";
    const auto outcome = agent_outcome(end);
    EXPECT_FALSE(outcome.succeeded());
    EXPECT_NE(outcome.describe().find("Attempted to kill init"), std::string::npos)
        << outcome.describe();
}

TEST(AgentOutcomeOfVmm, AgentFailureBeforeTheResetIsItsStatus) {
    VmmEnd end = exited(0, "reset");
    end.serial_tail =
        "pv-agent: connect to vsock host port 1024: Connection reset\n"
        "pv-agent: exit status 1, rebooting\n";
    const auto outcome = agent_outcome(end);
    EXPECT_EQ(outcome.ending, Ending::Exited);
    EXPECT_EQ(outcome.exit_status, 1);
    end.serial_tail = "pv-agent: exit status 0, rebooting\n";
    EXPECT_TRUE(agent_outcome(end).succeeded());
}

TEST(AgentOutcomeOfVmm, VmmTimeoutIsTimedOut) {
    const auto outcome = agent_outcome(exited(2, "timeout"));
    EXPECT_EQ(outcome.ending, Ending::TimedOut);
}

TEST(AgentOutcomeOfVmm, TripleFaultIsAFailureWithTheReason) {
    const auto outcome = agent_outcome(exited(2, "triple-fault", "rip=0x1000"));
    EXPECT_EQ(outcome.ending, Ending::Exited);
    EXPECT_EQ(outcome.exit_status, 2);
    EXPECT_NE(outcome.describe().find("triple-fault: rip=0x1000"), std::string::npos)
        << outcome.describe();
}

TEST(AgentOutcomeOfVmm, NoSummaryNamesTheVmmError) {
    VmmEnd end;
    end.process = {true, 1, 0};
    end.stderr_text = "patchvisor-vmm: open /dev/kvm: No such file or directory\n";
    const auto outcome = agent_outcome(end);
    EXPECT_EQ(outcome.exit_status, 1);
    EXPECT_NE(outcome.describe().find("open /dev/kvm"), std::string::npos) << outcome.describe();
}

TEST(AgentOutcomeOfVmm, GarbageSummaryIsNotASuccess) {
    VmmEnd end;
    end.process = {true, 0, 0};
    end.summary_json = "{\"exit_reason\": 7}";
    EXPECT_FALSE(agent_outcome(end).succeeded());
    end.summary_json = "not json at all";
    EXPECT_FALSE(agent_outcome(end).succeeded());
}

TEST(AgentOutcomeOfVmm, OurKillIsStoppedOrTimedOut) {
    VmmEnd end;
    end.process = {false, 0, SIGKILL};
    end.killed_by_sandbox = true;
    EXPECT_EQ(agent_outcome(end).ending, Ending::Stopped);
    end.past_deadline = true;
    EXPECT_EQ(agent_outcome(end).ending, Ending::TimedOut);
}

TEST(AgentOutcomeOfVmm, AnotherSignalIsACrash) {
    VmmEnd end;
    end.process = {false, 0, SIGSEGV};
    const auto outcome = agent_outcome(end);
    EXPECT_EQ(outcome.ending, Ending::Signaled);
    EXPECT_EQ(outcome.signal, SIGSEGV);
    end.process.signal = SIGKILL;  // a SIGKILL we did not send is a crash too
    EXPECT_EQ(agent_outcome(end).ending, Ending::Signaled);
}

}  // namespace
}  // namespace pv::sandbox
